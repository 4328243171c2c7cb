"""gdb and lldb front ends: the same engine and commands inside a debugger.

The debugger has already stopped the inferior (a live process or a core it
opened); these modules turn its API into a ``Process`` (memory, threads,
registers, mappings) and run the REPL's commands against it.  Only
``gdbprocess``/``gdbcommands`` import ``gdb`` and only
``lldbprocess``/``lldbcommands`` import ``lldb``; everything else here
imports neither, so ``pyspy-repl gdb-path`` works without a debugger.

Entry points: ``scripts/pyspy_gdb.py`` (``source`` it in gdb) and
``scripts/pyspy_lldb.py`` (``command script import`` it in lldb), whose
paths ``pyspy-repl gdb-path`` / ``lldb-path`` print.
"""
from __future__ import annotations

import os

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")
LOADERS = {"gdb": "pyspy_gdb.py", "lldb": "pyspy_lldb.py"}


def loader_path(debugger: str) -> str:
    """The loader script of ``debugger`` ("gdb" or "lldb")."""
    return os.path.join(SCRIPTS, LOADERS[debugger])
