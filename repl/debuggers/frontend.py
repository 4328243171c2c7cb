"""The REPL's commands inside a debugger: one session per debugger, one line per command.

``DebuggerFront`` keeps a ``DebuggerSession`` alive across ``pyspy ...``
commands (selected thread and frame survive, like in the REPL) and drops its
target and snapshot whenever the debugger's inferior has run or changed
(``key``), because memory read before a ``continue`` is stale.  Lines are
dispatched to the same command classes as the CLI and the REPL; commands
that need a process pyspy-repl controls itself (sampling, recording,
watching, attaching) answer with why they are unavailable here.
"""
from __future__ import annotations

import shlex
from typing import Callable, Hashable, Optional, TextIO

from snapshot.errors import SnapshotError

from ..commands.base import CommandError, _HelpShown
from ..session import Session

PROG = "pyspy"

#: Commands that need a process pyspy-repl runs or ptraces itself, and why.
UNAVAILABLE = {
    "record": "samples the process while it runs",
    "top": "samples the process while it runs",
    "sample": "samples the process while it runs",
    "watch": "re-reads the process while it runs",
    "attach": "the target is the debugger's inferior",
    "detach": "the target is the debugger's inferior (use the debugger's own `detach`)",
    "quit": "the debugger owns the session (use its own `quit`)",
}

#: libpython.py's gdb commands (and cpython-lldb's) -> our commands.
ALIASES = {"py-bt": "bt", "py-locals": "locals", "py-print": "print", "py-up": "up", "py-down": "down"}


def unavailable_message(name: str, debugger: str) -> str:
    return ("`%s` is not available inside %s: it %s; run `pyspy-repl %s --pid PID` outside the "
            "debugger (detach first, a process can have only one tracer)" % (name, debugger, UNAVAILABLE[name], name))


class DebuggerSession(Session):
    """A ``Session`` whose target is the debugger's inferior (made on demand by ``factory``)."""

    def __init__(self, factory: Callable[[], object], debugger: str, out: TextIO, err: TextIO):
        super().__init__(None, out, err)
        self.factory = factory
        self.debugger = debugger
        self.process = None
        self.key: Optional[Hashable] = None
        self.pending_native: Optional[int] = None
        self._last_followed: Optional[int] = None

    def sync(self, key: Hashable) -> bool:
        """Forget what was read if the inferior has run or changed since; True if it did."""
        if key == self.key:
            return False
        changed_process = self.key is None or key[0] != self.key[0]
        self.key = key
        if self.target is not None:
            self.target.close()
        if self.process is not None:
            self.process.close()
        self.target = self.process = None
        self.snapshot = None
        self._globals_cache.clear()
        if changed_process:
            self.thread_id = None
            self.frame_index = 0
            self._last_followed = -1   # follow the debugger's selection again
        return True

    def get_target(self, pid: Optional[int] = None):
        if self.target is None:
            from .engine import make_target
            process = self.factory()
            self.pid = process.pid
            try:
                self.target = make_target(process)
            except BaseException:
                process.close()
                raise
            self.process = process
        if pid is not None and pid != self.pid:
            raise CommandError("inside %s the target is its inferior (pid %d), not --pid %d"
                               % (self.debugger, self.pid, pid))
        return self.target

    def target_alive(self) -> bool:
        return self.process is None or self.process.is_alive()

    def debugger_selected(self, tid: Optional[int]) -> None:
        """Called before each command with the debugger's selected OS thread."""
        if tid != self._last_followed:
            self.follow(tid)

    def detach(self) -> None:
        self.sync(("detached",))

    def follow(self, tid: Optional[int]) -> None:
        """The debugger's selected thread changed to ``tid``: select its Python thread
        (now, or when the next snapshot is taken)."""
        self._last_followed = tid
        if self.snapshot is not None:
            self.select_native(tid)
        else:
            self.pending_native = tid

    def _set_snapshot(self, snapshot) -> None:
        super()._set_snapshot(snapshot)
        if self.pending_native is not None:
            self.select_native(self.pending_native)
            self.pending_native = None

    def select_native(self, tid: Optional[int]) -> None:
        """Select the Python thread running on OS thread ``tid`` (the debugger's selection)."""
        snapshot = self.snapshot
        if tid is None or snapshot is None:
            return
        for thread in snapshot.threads:
            if thread.native_id == tid:
                if thread.thread_id != self.thread_id:
                    self.thread_id = thread.thread_id
                    self.thread_index = snapshot.threads.index(thread)
                    self.frame_index = 0
                return


def split_line(line: str):
    try:
        return shlex.split(line)
    except ValueError as e:
        raise CommandError("cannot parse %r: %s" % (line, e)) from None


def command_class(name: str, debugger: str):
    from ..commands import load_all
    registry = load_all()
    name = ALIASES.get(name, name)
    cls = registry.get(name)
    if cls is None:
        raise CommandError("unknown command %r (see `pyspy help`)" % name)
    if cls.name in UNAVAILABLE:
        raise CommandError(unavailable_message(cls.name, debugger))
    return cls


def print_error(error: BaseException, stream: TextIO) -> None:
    stream.write("%s: error: %s\n" % (PROG, error))
    hint = getattr(error, "hint", "")
    if hint:
        stream.write("  hint: %s\n" % hint)
    stream.flush()


def run_line(session: DebuggerSession, line: str) -> int:
    """Run one ``pyspy`` line; errors are printed (one line + hint) and give an exit code."""
    try:
        words = split_line(line) or ["help"]
        cls = command_class(words[0], session.debugger)
        command = cls()
        args = command.parser("%s %s" % (PROG, cls.name)).parse_args(words[1:])
        return command.run(session, args) or 0
    except _HelpShown:
        return 0
    except (CommandError, SnapshotError) as e:
        print_error(e, session.err)
        return getattr(e, "exit_code", 1)
    finally:
        try:
            session.out.flush()
        except (OSError, ValueError):
            pass


def complete(session: DebuggerSession, text: str):
    """Candidates for the word at the end of ``text`` (a ``pyspy`` line without ``pyspy``)."""
    from ..commands import load_all
    from ..completion import candidates
    registry = {name: cls for name, cls in load_all().items() if cls.name not in UNAVAILABLE}
    try:
        words = text.split()
        if session.snapshot is None and words and (len(words) > 1 or text.endswith(" ")) and \
                words[0] in ("thread", "t", "frame", "f", "up", "down", "print", "p"):
            session.ensure_snapshot()    # thread names, frame numbers and local names need one
        return candidates(session, registry, text)
    except Exception:  # noqa: BLE001 - completion must never raise into the debugger
        return []
