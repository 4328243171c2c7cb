"""``sample``: a short sampling run in the foreground with a live table of the hottest functions."""
from __future__ import annotations

import time

from .base import Command, CommandError, finite, register
from .sampling import StopOnSignal

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Tuple


class HotTable:
    """Own and total sample counts per function (optionally per thread), fed ``profile.Sample`` s."""

    def __init__(self, per_thread: bool = False, idle: bool = False):
        self.per_thread = per_thread
        self.idle = idle
        self.own: Dict[Tuple, int] = {}
        self.total: Dict[Tuple, int] = {}
        self.samples = 0      # thread samples counted

    def add(self, sample) -> None:
        if not sample.frames:
            return
        self.samples += 1
        prefix = ((sample.thread_name or "%#x" % sample.thread_id),) if self.per_thread else ()
        seen = set()
        for index, frame in enumerate(sample.frames):
            key = prefix + (frame.function, frame.short_filename)
            if index == 0:
                self.own[key] = self.own.get(key, 0) + 1
            if key not in seen:
                seen.add(key)
                self.total[key] = self.total.get(key, 0) + 1

    def lines(self, limit: int = 20, passes: int = 0, elapsed: float = 0.0, status: str = "") -> List[str]:
        head = "%d samples (%d passes, %.1fs)%s" % (self.samples, passes, elapsed,
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
    samples = True
    #: seconds between two redraws of the live table
    REDRAW = 0.5

    def add_arguments(self, parser) -> None:
        parser.add_argument("--duration", "-d", type=finite, default=None, metavar="S",
                            help="seconds to sample (default: until Ctrl-C; 5 when not at a terminal)")
        parser.add_argument("--rate", "-r", type=finite, default=100.0, metavar="HZ",
                            help="samples per second (default 100)")
        parser.add_argument("--threads", action="store_true", help="one row per (thread, function)")
        parser.add_argument("--idle", action="store_true", help="count idle threads too")
        parser.add_argument("--limit", "-n", type=int, default=20, metavar="N", help="rows shown (default 20)")
        parser.add_argument("--nonblocking", action="store_true", help="read without pausing the target")

    def run(self, session, args) -> int:
        from snapshot.sampler import Sampler, SamplerOptions

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
        next_draw = [time.monotonic() + self.REDRAW]

        def draw(sampler, final: bool = False, status: str = "") -> None:
            lines = table.lines(args.limit, sampler.stats.passes, sampler.stats.elapsed, status)
            if live and shown[0]:
                out.write("\x1b[%dF\x1b[J" % shown[0])
            if live or final:
                out.write("\n".join(lines) + "\n")
                out.flush()
                shown[0] = len(lines)

        def on_pass(sampler) -> None:
            if live and time.monotonic() >= next_draw[0]:
                next_draw[0] = time.monotonic() + self.REDRAW
                draw(sampler)

        sampler = Sampler(target, table.add,
                          SamplerOptions(rate=args.rate, duration=duration, blocking=not args.nonblocking,
                                         idle=args.idle),
                          on_pass=on_pass, lock=session.pause_lock)
        with StopOnSignal(sampler):
            why = sampler.run()
        status = {"interrupted": "(interrupted)", "exited": "(target exited)"}.get(why, "")
        if sampler.stats.errors:
            status += " %d failed passes" % sampler.stats.errors
        draw(sampler, final=True, status=status.strip())
        if why == "exited":
            session.mark_exited()
            session.note("target process %d exited during sampling" % session.pid)
        return 0
