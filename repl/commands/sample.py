"""``sample``: a short sampling run in the foreground with a live table of the hottest functions."""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from snapshot.errors import ProcessExitedError, SnapshotError

from .base import Command, CommandError, register


@contextlib.contextmanager
def interrupt_flag():
    """Ctrl-C sets an Event instead of raising, so a loop stops between two (atomic) samples."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    except ValueError:
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def sample_loop(take: Callable[[], object], rate: float, stop: threading.Event,
                on_snapshot: Callable[[object], None], duration: Optional[float] = None,
                on_tick: Optional[Callable[[], None]] = None, tick_every: float = 0.5,
                on_error: Optional[Callable[[Exception], None]] = None) -> str:
    """Call ``take()`` ``rate`` times a second until ``stop``/``duration``; returns why it ended.

    ``take`` is Target.sample (one pause per call, all ptrace calls on this
    thread).  The schedule is absolute (no drift); a late pass is not made up.
    """
    period = 1.0 / rate
    start = time.monotonic()
    next_at = start
    next_tick = start + tick_every
    while not stop.is_set():
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            return "duration"
        if now < next_at:
            stop.wait(min(next_at - now, 0.05))
            continue
        next_at += period
        if next_at < now:
            next_at = now + period
        try:
            on_snapshot(take())
        except ProcessExitedError:
            return "exited"
        except SnapshotError as e:
            if on_error is not None:
                on_error(e)
        if on_tick is not None and time.monotonic() >= next_tick:
            next_tick = time.monotonic() + tick_every
            on_tick()
    return "interrupted"


class HotTable:
    """Own and total sample counts per function (optionally per thread)."""

    def __init__(self, per_thread: bool = False, idle: bool = False):
        self.per_thread = per_thread
        self.idle = idle
        self.own: Dict[Tuple, int] = {}
        self.total: Dict[Tuple, int] = {}
        self.samples = 0      # thread samples counted
        self.passes = 0
        self.errors = 0

    def add(self, snapshot) -> None:
        self.passes += 1
        for thread in snapshot.threads:
            if thread.is_idle and not self.idle:
                continue
            if not thread.frames:
                continue
            self.samples += 1
            prefix = ((thread.name or "%#x" % thread.thread_id),) if self.per_thread else ()
            seen = set()
            for index, frame in enumerate(thread.frames):
                key = prefix + (frame.function, frame.short_filename)
                if index == 0:
                    self.own[key] = self.own.get(key, 0) + 1
                if key not in seen:
                    seen.add(key)
                    self.total[key] = self.total.get(key, 0) + 1

    def lines(self, limit: int = 20, elapsed: float = 0.0, status: str = "") -> List[str]:
        head = "%d samples (%d passes, %.1fs)%s" % (self.samples, self.passes, elapsed,
                                                    ("  " + status) if status else "")
        out = [head]
        title = ("%6s %6s  %-20s %s" % ("OWN%", "TOTAL%", "THREAD", "FUNCTION (FILE)")) if self.per_thread \
            else "%6s %6s  %s" % ("OWN%", "TOTAL%", "FUNCTION (FILE)")
        out.append(title)
        if not self.samples:
            out.append("  (no samples of active threads yet%s)" % ("" if self.idle else "; --idle counts idle ones"))
            return out
        keys = sorted(self.total, key=lambda k: (-self.own.get(k, 0), -self.total[k], k))[:limit]
        for key in keys:
            own = 100.0 * self.own.get(key, 0) / self.samples
            total = 100.0 * self.total[key] / self.samples
            name = "%s (%s)" % (key[-2], key[-1])
            if self.per_thread:
                out.append("%5.1f%% %5.1f%%  %-20.20s %s" % (own, total, key[0], name))
            else:
                out.append("%5.1f%% %5.1f%%  %s" % (own, total, name))
        return out


@register
class SampleCommand(Command):
    name = "sample"
    help = ("Sample the target and show the hottest functions (own and total %), live, until the\n"
            "duration ends or Ctrl-C; the final table stays on screen.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--duration", "-d", type=float, default=None, metavar="S",
                            help="seconds to sample (default: until Ctrl-C; 5 when not at a terminal)")
        parser.add_argument("--rate", "-r", type=float, default=100.0, metavar="HZ",
                            help="samples per second (default 100)")
        parser.add_argument("--threads", action="store_true", help="one row per (thread, function)")
        parser.add_argument("--idle", action="store_true", help="count idle threads too")
        parser.add_argument("--limit", "-n", type=int, default=20, metavar="N", help="rows shown (default 20)")
        parser.add_argument("--nonblocking", action="store_true", help="read without pausing the target")

    def run(self, session, args) -> int:
        if args.rate <= 0 or args.rate > 10000:
            raise CommandError("--rate must be in (0, 10000]")
        duration = args.duration
        if duration is None and not session.interactive:
            duration = 5.0
        target = session.get_target()
        table = HotTable(args.threads, args.idle)
        out = session.out
        live = getattr(session, "live", False)
        shown = [0]
        start = time.monotonic()

        def draw(final: bool = False, status: str = "") -> None:
            lines = table.lines(args.limit, time.monotonic() - start, status)
            if live and shown[0]:
                out.write("\x1b[%dF\x1b[J" % shown[0])
            if live or final:
                out.write("\n".join(lines) + "\n")
                out.flush()
                shown[0] = len(lines)

        def take():
            with session.pause_lock:
                return target.sample(blocking=not args.nonblocking)

        def failed(error):
            table.errors += 1

        with interrupt_flag() as stop:
            why = sample_loop(take, args.rate, stop, table.add, duration, on_tick=draw if live else None,
                              on_error=failed)
        status = {"interrupted": "(interrupted)", "exited": "(target exited)"}.get(why, "")
        if table.errors:
            status += " %d failed passes" % table.errors
        draw(final=True, status=status.strip())
        if why == "exited":
            session.mark_exited()
            session.note("target process %d exited during sampling" % session.pid)
        return 0
