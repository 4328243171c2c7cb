"""What the sampling commands share: target and sampling flags, launching, Ctrl-C.

``record``, ``top`` (``--pid N`` or ``-- COMMAND``), the REPL's ``sample``,
``record start`` and ``watch`` all run ``snapshot.sampler.Sampler``; this
module holds their common front-end parts.
"""
from __future__ import annotations

import argparse
import signal
import threading
from typing import List

from snapshot.errors import ProcessExitedError

from ..supervise import Child
from .base import CommandError, finite, remainder_command

#: Seconds a launched command gets to show an initialised interpreter.
LAUNCH_TIMEOUT = 10.0


def add_target_arguments(parser) -> None:
    parser.add_argument("--pid", "-p", type=int, help="PID of a running Python program to sample")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                        help="a Python program to run and sample until it exits")


def add_sampling_arguments(parser) -> None:
    parser.add_argument("--rate", "-r", type=finite, default=100, metavar="RATE",
                        help="samples per second (default 100)")
    parser.add_argument("--nonblocking", action="store_true",
                        help="don't pause the target while reading it (less overhead, may be inconsistent)")
    parser.add_argument("--gil", "-g", action="store_true",
                        help="only sample the thread holding the GIL")
    parser.add_argument("--idle", "-i", action="store_true", help="include idle threads")
    parser.add_argument("--subprocesses", "-s", action="store_true",
                        help="also sample child processes (multiprocessing, gunicorn workers...)")


def command_of(args) -> List[str]:
    return remainder_command(args.command)


def launch(command: List[str]) -> Child:
    """Start ``command``; a command that cannot run is a one-line CommandError."""
    try:
        return Child(command)
    except OSError as e:
        raise CommandError("cannot run %s: %s" % (command[0], e.strerror or e)) from None


def open_target(session, args):
    """(target, launched-or-None) for ``--pid N`` or ``-- COMMAND ...``."""
    from snapshot.sampler import attach_when_ready

    command = command_of(args)
    if command and args.pid is not None:
        raise CommandError("give either --pid or a command, not both")
    if not command:
        if args.pid is None and getattr(session, "pid", None) is None:
            raise CommandError("no target: give --pid PID or -- COMMAND ARGS...")
        return session.get_target(args.pid), None
    launched = launch(command)
    try:
        target = attach_when_ready(launched.pid, LAUNCH_TIMEOUT, alive=launched.alive)
    except ProcessExitedError:
        code = launched.wait()
        raise CommandError("%s exited (status %s) before it could be sampled" % (command[0], code)) from None
    except BaseException:
        launched.stop()
        raise
    return target, launched


class StopOnSignal:
    """First Ctrl-C (or SIGTERM) ends sampling cleanly; a second one interrupts for real."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.old = {}

    def __enter__(self):
        from .. import interrupts
        interrupts.check()     # a Ctrl-C Python dropped during attach still stops us here
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.sampler.stopping:
            raise KeyboardInterrupt
        self.sampler.stop("interrupted")

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


#: How a summary line says why sampling ended (``Sampler.stop_reason``).
STOP_REASONS = {"duration": "duration reached", "exited": "target exited", "interrupted": "interrupted",
                "quit": "quit", "count": "done"}


def stop_reason_text(reason: str) -> str:
    return STOP_REASONS.get(reason, reason)
