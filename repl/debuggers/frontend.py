"""The REPL's commands inside a debugger: one session per debugger, one line per command.

``DebuggerFront`` keeps a ``DebuggerSession`` alive across ``pyspy ...``
commands (selected thread and frame survive, like in the REPL) and drops its
target and snapshot whenever the debugger's inferior has run or changed
(``key``), because memory read before a ``continue`` is stale.  Lines go
through ``repl.dispatch`` (the same command classes and capability flags
as the CLI and the REPL, ``source = DEBUGGER``): commands that need a
process pyspy-repl runs itself (sampling, recording, watching, attaching)
answer with why they are unavailable here.
"""
from __future__ import annotations


from ..commands.base import CommandError
from ..session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Hashable, Optional, TextIO


PROG = "pyspy"

#: libpython.py's gdb commands (and cpython-lldb's) -> our commands.
ALIASES = {"py-bt": "bt", "py-locals": "locals", "py-print": "print", "py-up": "up", "py-down": "down"}

_DISPATCHER = None


def dispatcher():
    """The REPL's dispatcher (shared command table and capability checks), named ``pyspy``."""
    global _DISPATCHER
    if _DISPATCHER is None:
        from ..dispatch import REPL, Dispatcher
        _DISPATCHER = Dispatcher(REPL, prog=PROG)
    return _DISPATCHER


def usable_commands():
    """(name, class) of every command that works inside a debugger, aliases included."""
    from ..commands.base import DEBUGGER
    table = dispatcher().table
    return sorted((name, cls) for name, cls in table.items()
                  if cls.unavailable(DEBUGGER) is None and name != "?")


class DebuggerSession(Session):
    """A ``Session`` whose target is the debugger's inferior (made on demand by ``factory``)."""

    def __init__(self, factory: Callable[[], object], debugger: str, out: TextIO, err: TextIO):
        super().__init__(None, out, err)
        from ..commands.base import DEBUGGER
        self.source = DEBUGGER
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
        # the inferior's pid (0: nothing loaded, which get_target reports with a hint)
        self.pid = key[1] if len(key) > 1 and isinstance(key[1], int) else 0
        self.exited = False
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


def run_line(session: DebuggerSession, line: str) -> int:
    """Run one ``pyspy`` line through the shared dispatcher; errors are printed (one line +
    hint) on ``session.err`` and give a non-zero status."""
    words = line.split(None, 1)
    if words and words[0] in ALIASES:
        line = ALIASES[words[0]] + (" " + words[1] if len(words) > 1 else "")
    return dispatcher().run_line(session, line.strip() or "help")


def complete(session: DebuggerSession, text: str):
    """Candidates for the word at the end of ``text`` (a ``pyspy`` line without ``pyspy``)."""
    try:
        words = text.split()
        if session.snapshot is None and words and (len(words) > 1 or text.endswith(" ")) and \
                words[0] in ("thread", "t", "frame", "f", "up", "down", "print", "p"):
            session.ensure_snapshot()    # thread names, frame numbers and local names need one
        return dispatcher().completions(session, text)
    except Exception:  # noqa: BLE001 - completion must never raise into the debugger
        return []
