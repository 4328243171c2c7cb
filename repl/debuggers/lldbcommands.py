"""lldb commands: ``pyspy SUBCOMMAND ...`` and ``py-bt``/``py-locals``/``py-print``/``py-up``/``py-down``.

Registered by ``scripts/pyspy_lldb.py`` with ``command script add``; each
call runs one line through ``frontend.run_line`` against the process lldb
has stopped (or the core it opened).  What was read is forgotten when the
process's stop id changes (it ran since).  Output goes through the
command's ``SBCommandReturnObject``: the command's text on lldb's standard
output, messages and warnings on its error stream.
"""
from __future__ import annotations

import io

import lldb

from . import frontend
from .lldbprocess import LldbProcess

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional


_front: Optional[frontend.DebuggerSession] = None


def _target(debugger, exe_ctx):
    target = exe_ctx.GetTarget() if exe_ctx is not None else None
    if target is None or not target.IsValid():
        target = debugger.GetSelectedTarget()
    return target


def session(debugger, exe_ctx) -> frontend.DebuggerSession:
    global _front
    target = _target(debugger, exe_ctx)
    if _front is None:
        _front = frontend.DebuggerSession(lambda: None, "lldb", io.StringIO(), io.StringIO())
    _front.factory = lambda: LldbProcess(target)
    process = target.GetProcess() if target.IsValid() else None
    if process is not None and process.IsValid():
        _front.sync((process.GetProcessID(), process.GetUniqueID(), process.GetStopID()))
        thread = process.GetSelectedThread()
        selected = thread.GetThreadID() if thread.IsValid() else None
    else:
        _front.sync(("no process",))
        selected = None
    _front.debugger_selected(selected)
    return _front


def run(debugger, line: str, exe_ctx, result) -> None:
    current = session(debugger, exe_ctx)
    current.out, current.err = io.StringIO(), io.StringIO()
    code = frontend.run_line(current, line.strip())
    text, messages = current.out.getvalue(), current.err.getvalue()
    if text:
        result.Print(text)
    if code:
        # lldb prefixes "error: " itself
        text = messages.rstrip("\n")
        result.SetError((text[len("error: "):] if text.startswith("error: ") else text) or "pyspy %s failed (exit %d)" % (line, code))
        return
    for message in messages.splitlines():
        if message.strip():
            result.AppendWarning(message)
    result.SetStatus(lldb.eReturnStatusSuccessFinishResult)


def register(debugger, module: str, problems: List[str] = ()) -> None:
    """``command script add`` for ``pyspy`` and the aliases (importing again replaces them)."""
    helps = {"pyspy": "Python stacks, locals and values read from memory: pyspy help | dump | bt | locals "
                      "| print EXPR | threads | thread N | up | down ..."}
    commands = [("pyspy", "pyspy")] + [(alias, alias.replace("-", "_")) for alias in frontend.ALIASES]
    for name, function in commands:
        text = helps.get(name) or "Like libpython.py's %s: `pyspy %s`." % (name, frontend.ALIASES[name])
        debugger.HandleCommand('command script add -o -h "%s" -f %s.%s %s' % (text, module, function, name))
    for problem in problems:
        stream = debugger.GetErrorFileHandle()
        if stream is not None:
            stream.write("pyspy: warning: %s\n" % problem)
