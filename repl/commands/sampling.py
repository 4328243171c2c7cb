"""What the sampling commands share: target and sampling flags, launching, Ctrl-C.

``record``, ``top`` (``--pid N`` or ``-- COMMAND``), the REPL's ``sample``,
``record start`` and ``watch`` all run ``snapshot.sampler.Sampler``; this
module holds their common front-end parts.
"""
from __future__ import annotations

import _signal as signal  # not ``signal``: its enums cost start-up (see snapshot/process/signals.py)
import sys

from snapshot.errors import NotPythonError, ProcessExitedError

from .base import REMAINDER, CommandError, finite, remainder_command

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List

    from ..supervise import Child     # imported by launch(): ``subprocess`` only for a launched command

#: Seconds a launched command gets to show an initialised interpreter.
LAUNCH_TIMEOUT = 30.0  # generous: a loaded machine can take this long to start an interpreter
#: Seconds a launched command may run something else before it is called "not Python"
#: (a shell or ``env`` that execs the interpreter does so well within this).
NOT_PYTHON_AFTER = 0.5
#: The hint for a root that runs no Python of its own.
SUBPROCESSES_HINT = "add --subprocesses to sample the Python processes it starts"


def add_target_arguments(parser) -> None:
    parser.add_argument("--pid", "-p", type=int, help="PID of a running Python program to sample")
    parser.add_argument("command", nargs=REMAINDER, metavar="-- COMMAND ...",
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
    from .dump import add_native_options
    add_native_options(parser)


def native_options(args) -> dict:
    """``SamplerOptions`` keywords for ``--native``/``--native-all``; with ``--nonblocking`` a
    usage error before anything starts."""
    from .dump import use_debug_dirs
    use_debug_dirs(args)
    native_all = bool(getattr(args, "native_all", False))
    native = bool(getattr(args, "native", False)) or native_all
    if native and getattr(args, "nonblocking", False):
        from snapshot.errors import NativeModeError
        raise NativeModeError.nonblocking()
    return {"native": native, "native_all": native_all}


def command_of(args) -> List[str]:
    return remainder_command(args.command)


def launch(command: List[str]) -> Child:
    """Start ``command``; a command that cannot run is a one-line CommandError."""
    from ..supervise import Child
    try:
        return Child(command)
    except OSError as e:
        raise CommandError("cannot run %s: %s" % (command[0], e.strerror or e)) from None


def open_target(session, args, tree: bool = False):
    """(target, launched-or-None) for ``--pid N`` or ``-- COMMAND ...``.

    ``tree`` (``--subprocesses`` where the command supports a root without
    Python): a root that runs no Python (a shell, a supervisor) gives target
    None, and the caller samples its Python descendants.  Otherwise such a
    launched command is refused at once, with the hint to add ``--subprocesses``.
    """
    from snapshot.sampler import attach_when_ready

    command = command_of(args)
    if command and args.pid is not None:
        raise CommandError("give either --pid or a command, not both")
    if not command:
        if args.pid is None and getattr(session, "pid", None) is None:
            raise CommandError("no target: give --pid PID or -- COMMAND ARGS...")
        try:
            return session.get_target(args.pid), None
        except NotPythonError:
            if tree and args.pid is not None:
                return None, None
            raise
    launched = launch(command)
    try:
        target = attach_when_ready(launched.pid, LAUNCH_TIMEOUT, alive=launched.alive,
                                   not_python_after=NOT_PYTHON_AFTER)
    except NotPythonError as e:
        if tree:
            return None, launched
        _stop_tree(launched)  # never sampled: no need to let it (or what it started) finish
        raise NotPythonError(e.message, SUBPROCESSES_HINT) from None
    except ProcessExitedError:
        code = launched.wait()
        raise CommandError("%s exited (status %s) before it could be sampled" % (command[0], code)) from None
    except BaseException:
        launched.stop()
        raise
    return target, launched


def _stop_tree(launched: Child) -> None:
    """Stop a launched command that will not be sampled, and the processes it started."""
    import psutil
    try:
        children = psutil.Process(launched.pid).children(recursive=True)
    except psutil.Error:
        children = []
    launched.stop(timeout=0.2)
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass


class StopOnSignal:
    """First Ctrl-C (or SIGTERM) ends sampling cleanly; a second one interrupts for real."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.old = {}

    def __enter__(self):
        from .. import interrupts
        interrupts.check()     # a Ctrl-C Python dropped during attach still stops us here
        # signal handlers are the main thread's to set; without ``threading`` loaded no other runs
        threading = sys.modules.get("threading")
        if threading is None or threading.current_thread() is threading.main_thread():
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
