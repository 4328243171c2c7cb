"""``top``: a live, top-like view of where a Python program spends its time.

    pyspy-repl top --pid 1234
    pyspy-repl top -- python app.py

Like ``py-spy top``: a header with the samples taken, %GIL (passes in which
some thread held the GIL), %Active (active thread samples per pass, so two
busy threads read 200%) and the thread count; then one row per function,
``%Own %Total OwnTime TotalTime Function (file:line)``.  The percentages
cover the last refresh interval, the counts and times the run since the
last reset.  On a terminal it is a full-screen prompt_toolkit application
(``top_screen``, imported only then): keys 1-4 sort by that column, L
toggles line numbers, R resets the counts, ? shows the keys, q (or Ctrl-C)
quits, leaving the process running and untraced.  When stdout is not a
terminal, a plain table is printed every interval instead.
"""
from __future__ import annotations

import sys
import threading
import time


from ..progress import format_seconds, is_terminal
from .base import Command, CommandError, finite, register
from .topview import TopStats, TopView
from .sampling import (StopOnSignal, add_sampling_arguments, add_target_arguments, native_options,
                       open_target, stop_reason_text)

def keys_stream():
    """The terminal to read keys from: stdin when it is one, else None (a screen without keys)."""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return sys.stdin
    except (AttributeError, ValueError, OSError):
        pass
    return None


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
        state = {"next": time.monotonic() + args.delay, "tables": 0}

        def refresh(sampler) -> None:
            view.next_interval(sampler.stats)
            lines = view.lines(sampler.stats, 10 ** 6, args.rows + 4)
            out.write("\n".join(lines) + "\n\n")
            out.flush()
            state["tables"] += 1

        def on_pass(sampler) -> None:
            if time.monotonic() >= state["next"]:
                state["next"] = time.monotonic() + args.delay
                refresh(sampler)

        lock = threading.Lock()

        def add_locked(sample) -> None:
            with lock:
                stats.add(sample)

        options = SamplerOptions(rate=args.rate, duration=args.duration, blocking=not args.nonblocking,
                                 gil=args.gil, idle=args.idle, subprocesses=args.subprocesses, **native)
        alive = launched.alive if launched else None
        sampler = None
        try:
            if interactive:
                from .top_screen import TopScreen  # prompt_toolkit: only when a screen is drawn
                screen = TopScreen(view, lock, lambda: sampler.stats, args.delay,
                                   on_quit=lambda: sampler.stop("quit"), out=out, keys=keys_stream())
                sampler = Sampler(target, add_locked, options, on_pass=screen.on_pass, alive=alive)
                with StopOnSignal(sampler):
                    reason = screen.run_beside(sampler)
            else:
                sampler = Sampler(target, stats.add, options, on_pass=on_pass, alive=alive)
                with StopOnSignal(sampler):
                    reason = sampler.run()
                if sampler.stats.passes and (state["tables"] == 0 or view._last is None
                                             or view._last.passes != sampler.stats.passes):
                    refresh(sampler)
        finally:
            if sampler is not None:
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
