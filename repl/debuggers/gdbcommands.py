"""gdb commands: ``pyspy SUBCOMMAND ...`` (with completion) and libpython.py's ``py-bt`` family.

Every subcommand of the REPL is a gdb subcommand of ``pyspy`` (so ``help
pyspy`` lists them and ``help pyspy dump`` shows one), all dispatched to the
shared command classes through ``frontend.run_line``.  What was read is
forgotten whenever gdb reports that the inferior ran, changed, or had its
memory or registers written (``gdb.events``).  The extension never pauses
or resumes the inferior: gdb owns it.
"""
from __future__ import annotations

import io

import gdb

from . import frontend
from .gdbprocess import GdbProcess

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional


_generation = 0
_front: Optional[frontend.DebuggerSession] = None


class GdbStream(io.TextIOBase):
    """A text stream onto gdb's stdout or stderr (keeps gdb's own output in order)."""

    def __init__(self, stream: int):
        super().__init__()
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        gdb.write(text, self.stream)
        return len(text)

    def flush(self) -> None:
        gdb.flush(self.stream)


def _bump(*_args) -> None:
    global _generation
    _generation += 1


def _connect_events() -> None:
    for name in ("cont", "stop", "exited", "new_objfile", "clear_objfiles", "inferior_call",
                 "memory_changed", "register_changed", "new_inferior", "inferior_deleted", "new_thread"):
        registry = getattr(gdb.events, name, None)
        if registry is not None:
            registry.connect(_bump)


def _selected_tid() -> Optional[int]:
    thread = gdb.selected_thread()
    if thread is None or not thread.is_valid():
        return None
    return thread.ptid[1] or thread.ptid[0]


def session() -> frontend.DebuggerSession:
    """The one session of this gdb, synced with the inferior's current state."""
    global _front
    if _front is None:
        _front = frontend.DebuggerSession(lambda: GdbProcess(), "gdb", GdbStream(gdb.STDOUT), GdbStream(gdb.STDERR))
    inferior = gdb.selected_inferior()
    _front.sync((inferior.num, inferior.pid, _generation))
    _front.debugger_selected(_selected_tid())
    return _front


def run(line: str) -> None:
    current = session()
    code = frontend.run_line(current, line)
    if code:
        # the message (and hint) is printed already; make scripts see a failed command
        raise gdb.GdbError("pyspy %s failed (exit %d)" % (line.split(" ", 1)[0] if line else "", code))


def _complete(prefix: str, text: str, word: Optional[str]) -> List[str]:
    if word is None:
        return []   # gdb's "break characters" phase: use the defaults
    line = (prefix + " " + text) if prefix else text
    current = "" if not line or line.endswith(" ") else line.split()[-1]
    cut = len(current) - len(word)
    return [c[cut:] if cut > 0 else c for c in frontend.complete(session(), line)]


class PyspyCommand(gdb.Command):
    """Python stacks, locals and values of the inferior, read from memory (no debug symbols needed).

Usage: pyspy SUBCOMMAND [ARGS]   e.g.  pyspy dump --locals, pyspy bt, pyspy locals,
pyspy print EXPR, pyspy threads, pyspy thread N, pyspy up, pyspy down.
`pyspy help` lists every subcommand; `pyspy SUBCOMMAND --help` shows its options."""

    def __init__(self):
        super().__init__("pyspy", gdb.COMMAND_STACK, prefix=True)   # no completer class: complete() is used

    def invoke(self, arg: str, from_tty: bool) -> None:
        run(arg.strip())

    def complete(self, text: str, word: Optional[str]):
        return _complete("", text, word)


class _Subcommand(gdb.Command):
    def __init__(self, gdb_name: str, line_prefix: str, doc: str):
        self.__doc__ = doc
        self.line_prefix = line_prefix
        super().__init__(gdb_name, gdb.COMMAND_STACK)

    def invoke(self, arg: str, from_tty: bool) -> None:
        run((self.line_prefix + " " + arg).strip())

    def complete(self, text: str, word: Optional[str]):
        return _complete(self.line_prefix, text, word)


def register(problems: List[str] = ()) -> None:
    """Create the commands (sourcing the script again replaces them)."""
    _connect_events()
    PyspyCommand()
    for name, cls in frontend.usable_commands():
        doc = (cls.help or cls.name) + "\n\nSee `pyspy %s --help` for its options." % cls.name
        _Subcommand("pyspy " + name, cls.name, doc)
    for alias, target in frontend.ALIASES.items():
        _Subcommand(alias, target, "Like libpython.py's %s: `pyspy %s` (no debug symbols needed)." % (alias, target))
    for problem in problems:
        gdb.write("pyspy: warning: %s\n" % problem, gdb.STDERR)
