"""pyspy-repl's gdb extension loader: ``(gdb) source PATH`` where PATH is ``pyspy-repl gdb-path``.

Puts the installed package (and the dependency directories that
``pyspy-repl gdb-path`` recorded) on gdb's ``sys.path`` and registers the
``pyspy`` command with ``py-bt``, ``py-locals``, ``py-print``, ``py-up`` and
``py-down``.  Also usable before the inferior loads: ``gdb -ix PATH``.
"""
import os as _os
import sys as _sys

_root = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))))
if _root in _sys.path:
    _sys.path.remove(_root)
_sys.path.insert(0, _root)

from repl.debuggers import sitepaths as _sitepaths  # noqa: E402

_problems = _sitepaths.activate()

from repl.debuggers import gdbcommands as _gdbcommands  # noqa: E402

_gdbcommands.register(_problems)
