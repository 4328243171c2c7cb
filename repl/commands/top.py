"""``top``: a live, top-like view of where a Python program spends its time.

    pyspy-repl top --pid 1234
    pyspy-repl top -- python app.py

Like ``py-spy top``: a header with the samples taken, %GIL (passes in which
some thread held the GIL), %Active (active thread samples per pass, so two
busy threads read 200%) and the thread count; then one row per function,
``%Own %Total OwnTime TotalTime Function (file:line)``.  The percentages
cover the last refresh interval, the times the whole run.  Keys: 1-4 sort
by that column, L toggles line numbers, R resets the counts, ? shows the
keys, q (or Ctrl-C) quits.  Plain ANSI escapes and termios only,
so it works over ssh and inside tmux.  When stdout is not a terminal, a
plain table is printed every interval instead.
"""
from __future__ import annotations

import os
import select
import shutil
import sys
import time
from typing import Dict, List, Optional, Tuple

from ..progress import format_seconds, is_terminal
from .base import Command, CommandError, finite, register
from .sampling import (StopOnSignal, add_sampling_arguments, add_target_arguments, native_options,
                       open_target, stop_reason_text)

COLUMNS = ("%Own", "%Total", "OwnTime", "TotalTime")
Key = tuple  # (function, filename), or (function, filename, line) with line numbers on


class TopStats:
    """Own and total counts per function: cumulative and for the current interval."""

    def __init__(self, full_filenames: bool = False, line_numbers: bool = False):
        self.full_filenames = full_filenames
        #: Aggregate by (function, file, line) instead of by function (key ``L``).
        self.line_numbers = line_numbers
        self.reset()

    def reset(self) -> None:
        """Forget every count (key ``R``)."""
        self.own: Dict[Key, int] = {}
        self.total: Dict[Key, int] = {}
        self.own_now: Dict[Key, int] = {}
        self.total_now: Dict[Key, int] = {}
        self.lines: Dict[Key, int] = {}
        self.labels: Dict[Key, str] = {}

    def add(self, sample) -> None:
        frames = sample.frames
        if not frames:
            return
        lines = self.lines
        seen = set()
        own = True
        by_line = self.line_numbers
        for frame in frames:
            key = (frame.function, frame.filename, frame.line) if by_line else (frame.function, frame.filename)
            if key not in lines:
                lines[key] = frame.line
            if own:
                self.own[key] = self.own.get(key, 0) + 1
                self.own_now[key] = self.own_now.get(key, 0) + 1
                own = False
            if key in seen:
                continue  # recursion: count a function once per stack
            seen.add(key)
            self.total[key] = self.total.get(key, 0) + 1
            self.total_now[key] = self.total_now.get(key, 0) + 1

    def new_interval(self) -> None:
        self.own_now = {}
        self.total_now = {}

    def label(self, key: Key) -> str:
        text = self.labels.get(key)
        if text is None:
            from snapshot.model import short_filename
            function, filename = key[0], key[1]
            name = filename if self.full_filenames else short_filename(filename)
            line = key[2] if len(key) > 2 else self.lines.get(key) or 0
            text = "%s (%s:%d)" % (function, name, line) if line else "%s (%s)" % (function, name)
            self.labels[key] = text
        return text

    def rows(self, sort: int, interval_passes: int, rate: float) -> List[Tuple[float, float, float, float, str]]:
        passes = max(1, interval_passes)
        result = []
        for key, total in self.total.items():
            own = self.own.get(key, 0)
            result.append((100.0 * self.own_now.get(key, 0) / passes, 100.0 * self.total_now.get(key, 0) / passes,
                           own / rate, total / rate, self.label(key)))
        result.sort(key=lambda row: (-row[sort], -row[3], row[4]))
        return result


def fmt_time(seconds: float) -> str:
    if seconds < 100:
        return "%.2fs" % seconds
    return format_seconds(seconds)


HELP = (
    "Keys:",
    "  1 2 3 4   sort by %Own, %Total, OwnTime, TotalTime",
    "  L         toggle line numbers (aggregate by line instead of by function)",
    "  R         reset the counts",
    "  ?         show or hide this help",
    "  q Ctrl-C  quit",
)


class TopView:
    """Renders header and rows; the same text for the terminal and the pipe."""

    def __init__(self, target, stats: TopStats, rate: float, title: str):
        self.target = target
        self.stats = stats
        self.rate = rate
        self.title = title
        self.sort = 0
        self.show_help = False
        self._last = None  # SamplerStats copy at the previous refresh

    def handle_key(self, key: str, sampler_stats=None) -> Optional[str]:
        """React to one key: "quit", "redraw", or None (not ours)."""
        if key in "qQ\x03":
            return "quit"
        if key in "1234":
            self.sort = int(key) - 1
        elif key == "?":
            self.show_help = not self.show_help
        elif key in "lL":
            self.stats.line_numbers = not self.stats.line_numbers
            self.stats.reset()  # counts by function and by line do not mix
        elif key in "rR":
            self.stats.reset()
            if sampler_stats is not None:
                self._last = sampler_stats.copy()
        elif self.show_help:
            self.show_help = False  # any other key closes the help
        else:
            return None
        return "redraw"

    def interval(self, sampler_stats):
        last = self._last
        passes = sampler_stats.passes - (last.passes if last else 0)
        gil = sampler_stats.gil_passes - (last.gil_passes if last else 0)
        active = sampler_stats.threads_active - (last.threads_active if last else 0)
        return passes, gil, active

    def lines(self, sampler_stats, width: int, height: Optional[int]) -> List[str]:
        if self.show_help:
            return [self.title[:width], ""] + [line[:width] for line in HELP]
        passes, gil, active = self.interval(sampler_stats)
        denominator = max(1, passes)
        header = [
            self.title[:width],
            ("Total Samples %d | GIL: %.2f%% | Active: %.2f%% | Threads: %d | Errors: %d | Late: %d | %s"
             % (sampler_stats.passes, 100.0 * gil / denominator, 100.0 * active / denominator,
                sampler_stats.threads, sampler_stats.errors, sampler_stats.late,
                format_seconds(sampler_stats.elapsed)))[:width],
            "",
        ]
        names = []
        for index, name in enumerate(COLUMNS):
            mark = "*" if index == self.sort else " "
            names.append("%s%s" % (mark, name))
        head = "%8s %8s %9s %10s  %s" % (names[0], names[1], names[2], names[3], "Function (filename:line)")
        rows = self.stats.rows(self.sort, passes, self.rate)
        limit = len(rows) if height is None else max(0, height - len(header) - 1)
        body = ["%7.2f%% %7.2f%% %9s %10s  %s" % (own, total, fmt_time(own_t), fmt_time(total_t), label)
                for own, total, own_t, total_t, label in rows[:limit]]
        return header + [head[:width]] + [line[:width] for line in body]

    def next_interval(self, sampler_stats) -> None:
        self._last = sampler_stats.copy()
        self.stats.new_interval()


class Terminal:
    """Alternate screen, hidden cursor, keys without Enter; always restored."""

    def __init__(self, out, keys_fd: Optional[int]):
        self.out = out
        self.fd = keys_fd
        self.saved = None

    def __enter__(self):
        if self.fd is not None:
            import termios
            import tty
            try:
                self.saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
            except termios.error:
                self.fd = None
        self.out.write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")
        self.out.flush()
        return self

    def keys(self) -> str:
        if self.fd is None:
            return ""
        try:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if ready:
                return os.read(self.fd, 64).decode("utf-8", "replace")
        except (OSError, ValueError):
            self.fd = None
        return ""

    def draw(self, lines: List[str]) -> None:
        self.out.write("\x1b[H" + "".join(line + "\x1b[K\r\n" for line in lines[:-1])
                       + (lines[-1] + "\x1b[K" if lines else "") + "\x1b[J")
        self.out.flush()

    def __exit__(self, *exc):
        try:
            self.out.write("\x1b[?25h\x1b[?1049l")
            self.out.flush()
        finally:
            if self.saved is not None:
                import termios
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


@register
class TopCommand(Command):
    name = "top"
    help = "Live top-like view of the functions a Python program spends its time in (like py-spy top)."
    cli = True
    samples = True

    def add_arguments(self, parser) -> None:
        add_target_arguments(parser)
        add_sampling_arguments(parser)
        parser.add_argument("--full-filenames", action="store_true", help="full paths of source files")
        parser.add_argument("--delay", type=finite, default=1.0, metavar="SECONDS",
                            help="seconds between refreshes (default 1)")
        parser.add_argument("--rows", type=int, default=25, metavar="N",
                            help="rows per table when not on a terminal (default 25)")
        parser.add_argument("--duration", "-d", type=finite, metavar="SECONDS", help="stop after SECONDS")

    def run(self, session, args) -> int:
        from snapshot.sampler import Sampler, SamplerOptions

        if args.rate <= 0:
            raise CommandError("--rate must be positive")
        if args.delay <= 0:
            raise CommandError("--delay must be positive")
        out = session.out
        native = native_options(args)
        target, launched = open_target(session, args)
        if native["native"]:
            target.check_native()
        stats = TopStats(args.full_filenames)
        command = " ".join(target.command_line) or target.executable
        title = "pyspy-repl top: process %d (%s), Python %s" % (target.pid, command, target.python_version)
        view = TopView(target, stats, args.rate, title)
        interactive = is_terminal(out)
        keys_fd = None
        if interactive:
            try:
                if sys.stdin is not None and sys.stdin.isatty():
                    keys_fd = sys.stdin.fileno()
            except (AttributeError, ValueError, OSError):
                keys_fd = None
        state = {"next": time.monotonic() + args.delay, "screen": None, "tables": 0}

        def refresh(sampler) -> None:
            if state["screen"] is not None:
                size = shutil.get_terminal_size((100, 30))
                state["screen"].draw(view.lines(sampler.stats, size.columns, size.lines))
            else:
                lines = view.lines(sampler.stats, 10 ** 6, args.rows + 4)
                out.write("\n".join(lines) + "\n\n")
                out.flush()
                state["tables"] += 1
            view.next_interval(sampler.stats)

        def on_pass(sampler) -> None:
            screen = state["screen"]
            if screen is not None:
                pressed = screen.keys()
                changed = False
                for key in pressed:
                    action = view.handle_key(key, sampler.stats)
                    if action == "quit":
                        sampler.stop("quit")
                        return
                    changed = changed or action == "redraw"
                if changed:
                    size = shutil.get_terminal_size((100, 30))
                    screen.draw(view.lines(sampler.stats, size.columns, size.lines))
            if time.monotonic() >= state["next"]:
                state["next"] = time.monotonic() + args.delay
                refresh(sampler)

        sampler = Sampler(target, stats.add,
                          SamplerOptions(rate=args.rate, duration=args.duration, blocking=not args.nonblocking,
                                         gil=args.gil, idle=args.idle, subprocesses=args.subprocesses,
                                         **native),
                          on_pass=on_pass, alive=launched.alive if launched else None)
        try:
            with StopOnSignal(sampler):
                if interactive:
                    with Terminal(out, keys_fd) as screen:
                        state["screen"] = screen
                        reason = sampler.run()
                    state["screen"] = None
                else:
                    reason = sampler.run()
                    if sampler.stats.passes and (state["tables"] == 0 or view._last is None
                                                 or view._last.passes != sampler.stats.passes):
                        refresh(sampler)
        finally:
            sampler.close()
            if launched is not None:
                launched.stop()
                target.close()
        s = sampler.stats
        why = stop_reason_text(reason)
        session.err.write("top: %d samples, %d errors, %d late, %s (%s)\n"
                          % (s.passes, s.errors, s.late, format_seconds(s.elapsed), why))
        session.err.flush()
        return 0


__all__ = ["TopCommand", "TopStats", "TopView"]
