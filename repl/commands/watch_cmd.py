"""REPL ``watch [--interval S] COMMAND ...``: repeat a command on fresh snapshots until Ctrl-C.

Not the CLI's ``pyspy-repl watch -- COMMAND`` (the CI hang watchdog in
hangwatch.py): this class is REPL-only (``cli = False``) and is not put in
``REGISTRY``; the REPL finds it through ``repl.interactive.repl_registry``,
which prefers ``cli = False`` classes for a name.
"""
from __future__ import annotations

import argparse
import time

from .base import Command, CommandError, remainder_command
from .sample import interrupt_flag


class WatchReplCommand(Command):
    name = "watch"
    help = ("Repeat a command on a fresh snapshot every S seconds until Ctrl-C,\n"
            "e.g.  watch bt    watch --interval 0.5 p self.queue")
    cli = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", "-n", type=float, default=1.0, metavar="S",
                            help="seconds between runs (default 1)")
        parser.add_argument("--count", "-c", type=int, default=None, metavar="N",
                            help="stop after N runs (default: until Ctrl-C; 3 when not at a terminal)")
        parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND ...",
                            help="the command to repeat (with its arguments)")

    def run(self, session, args) -> int:
        words = remainder_command(args.command)
        if not words:
            raise CommandError("watch: which command? e.g. `watch bt`")
        if words[0] in ("watch", "quit", "exit", "q", "attach", "detach", "record"):
            raise CommandError("watch: %r cannot be repeated" % words[0])
        if args.interval <= 0:
            raise CommandError("--interval must be positive")
        dispatch = getattr(session, "dispatch", None)
        if dispatch is None:
            raise CommandError("watch needs the REPL")
        count = args.count
        if count is None and not session.interactive:
            count = 3
        live = getattr(session, "live", False)
        runs = 0
        failures = 0
        with interrupt_flag() as stop:
            while not stop.is_set():
                if live:
                    session.out.write("\x1b[H\x1b[2J")
                header = "Every %gs: %s    %s" % (args.interval, " ".join(words), time.strftime("%H:%M:%S"))
                session.out.write(session.style(header, "dim") + "\n")
                try:
                    session.refresh()
                except Exception as e:  # noqa: BLE001 - the dispatcher prints it the same way
                    if session.exited:
                        session.note("target process %d exited; watch stops" % session.pid)
                        return 1
                    raise
                status = dispatch(words)
                failures += status != 0
                session.out.flush()
                runs += 1
                if count is not None and runs >= count:
                    break
                stop.wait(args.interval)
        return 1 if failures and failures == runs else 0
