"""REPL ``watch [--interval S] COMMAND ...``: repeat a command on fresh snapshots until Ctrl-C.

Not the CLI's ``pyspy-repl watch -- COMMAND`` (the CI hang watchdog in
hangwatch.py): this class is the prompt's ``watch`` (``cli = False``), the
other one is the CLI's (``repl = False``).  The repetition is the one
sampling loop (``snapshot.sampler.Sampler``) at one pass per interval,
reading whole snapshots with locals; each pass becomes the session's
snapshot and the command runs on it through the session's dispatcher.
"""
from __future__ import annotations

import argparse
import time

from snapshot.errors import ProcessExitedError

from .base import Command, CommandError, finite, register, remainder_command
from .sampling import StopOnSignal

#: Commands that make no sense repeated (they end, change or already repeat the session).
NOT_REPEATABLE = ("watch", "quit", "exit", "q", "attach", "detach", "record")


@register
class WatchReplCommand(Command):
    name = "watch"
    help = ("Repeat a command on a fresh snapshot every S seconds until Ctrl-C,\n"
            "e.g.  watch bt    watch --interval 0.5 p self.queue    watch --native bt")
    cli = False
    samples = True

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", "-n", type=finite, default=1.0, metavar="S",
                            help="seconds between runs (default 1)")
        parser.add_argument("--count", "-c", type=int, default=None, metavar="N",
                            help="stop after N runs (default: until Ctrl-C; 3 when not at a terminal)")
        from .dump import add_native_options
        add_native_options(parser, short=False)
        parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND ...",
                            help="the command to repeat (with its arguments)")

    def run(self, session, args) -> int:
        from snapshot.sampler import Sampler, SamplerOptions

        words = remainder_command(args.command)
        if not words:
            raise CommandError("watch: which command? e.g. `watch bt`")
        if words[0] in NOT_REPEATABLE:
            raise CommandError("watch: %r cannot be repeated" % words[0])
        if args.interval <= 0:
            raise CommandError("--interval must be positive")
        dispatcher = getattr(session, "dispatcher", None)
        if dispatcher is None:
            raise CommandError("watch needs a front end that dispatches commands")
        count = args.count
        if count is None and not session.interactive:
            count = 3
        if count is not None and count <= 0:
            raise CommandError("--count must be positive")
        live = getattr(session, "live", False)
        target = session.get_target()
        from .dump import use_debug_dirs
        use_debug_dirs(args)
        native_all = args.native_all or session.native_all
        native = args.native or session.native or native_all
        if native:
            target.check_native()
        results = []

        def header() -> None:
            if live:
                session.out.write("\x1b[H\x1b[2J")
            text = "Every %gs: %s    %s" % (args.interval, " ".join(words), time.strftime("%H:%M:%S"))
            session.out.write(session.style(text, "dim") + "\n")

        def run_once(snapshot) -> None:
            header()
            session._set_snapshot(snapshot)
            results.append(dispatcher.run_words(session, list(words)))
            session.out.flush()

        def failed(pid, error) -> None:
            if not isinstance(error, ProcessExitedError):
                header()
                dispatcher.print_error(session, error)
                results.append(1)

        sampler = Sampler(target, None, SamplerOptions(rate=1.0 / args.interval, passes=count, locals=True,
                                                       idle=True, native=native, native_all=native_all),
                          on_snapshot=run_once, on_error=failed, lock=session.pause_lock)
        with StopOnSignal(sampler):
            why = sampler.run()
        if why == "exited":
            session.mark_exited()
            session.note("target process %d exited; watch stops" % session.pid)
            return 1
        failures = sum(1 for status in results if status != 0)
        return 1 if failures and failures == len(results) else 0
