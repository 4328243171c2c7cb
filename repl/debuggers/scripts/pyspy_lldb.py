"""pyspy-repl's lldb extension: ``(lldb) command script import PATH`` (PATH: ``pyspy-repl lldb-path``).

Puts the installed package (and the dependency directories that
``pyspy-repl lldb-path`` recorded) on lldb's ``sys.path`` and registers the
``pyspy`` command with ``py-bt``, ``py-locals``, ``py-print``, ``py-up`` and
``py-down``.
"""
import os as _os
import sys as _sys

_root = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))))
if _root in _sys.path:
    _sys.path.remove(_root)
_sys.path.insert(0, _root)

from repl.debuggers import sitepaths as _sitepaths  # noqa: E402

_problems = _sitepaths.activate()


def __lldb_init_module(debugger, internal_dict):
    from repl.debuggers import lldbcommands
    lldbcommands.register(debugger, __name__, _problems)


def pyspy(debugger, command, exe_ctx, result, internal_dict):
    from repl.debuggers import lldbcommands
    lldbcommands.run(debugger, command, exe_ctx, result)


def _alias(target):
    def command(debugger, arguments, exe_ctx, result, internal_dict):
        from repl.debuggers import lldbcommands
        lldbcommands.run(debugger, (target + " " + arguments).strip(), exe_ctx, result)
    return command


py_bt = _alias("bt")
py_locals = _alias("locals")
py_print = _alias("print")
py_up = _alias("up")
py_down = _alias("down")
