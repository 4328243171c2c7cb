"""``pyspy-repl gdb-path`` / ``lldb-path``: record where the dependencies are, print the loader's path.

Run by the Python that installed pyspy-repl, so it knows (and records, see
``sitepaths``) the directories the debugger's own Python must be given.
Prints only the path, so ``gdb -ex "source $(pyspy-repl gdb-path)"`` and
``command script import $(pyspy-repl lldb-path)`` work; problems go to stderr.
"""
from __future__ import annotations

import os
import sys

from . import loader_path, sitepaths

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List


USAGE = {
    "gdb": "usage: pyspy-repl gdb-path\n\nPrint the path of pyspy-repl's gdb script; load it with\n"
           "  gdb -ex \"source $(pyspy-repl gdb-path)\" -p PID      (or: echo \"source $(pyspy-repl gdb-path)\""
           " >> ~/.gdbinit)\nthen run `pyspy help`, `pyspy dump --locals`, `py-bt`, `py-locals`, `py-print NAME`.\n",
    "lldb": "usage: pyspy-repl lldb-path\n\nPrint the path of pyspy-repl's lldb script; load it with\n"
            "  lldb-16 -p PID -o \"command script import $(pyspy-repl lldb-path)\"\n"
            "then run `pyspy help`, `pyspy dump --locals`, `py-bt`, `py-locals`, `py-print NAME`.\n",
}


def main(debugger: str, argv: List[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE[debugger])
        return 0
    if argv:
        sys.stderr.write("pyspy-repl %s-path: error: no arguments expected\n%s" % (debugger, USAGE[debugger]))
        return 2
    data = sitepaths.record()
    missing = [m for m in sitepaths.DEPENDENCIES if m not in data["modules"]]
    if missing:
        sys.stderr.write("pyspy-repl %s-path: warning: %s not importable from %s; the %s extension "
                         "will miss them\n" % (debugger, ", ".join(missing), sys.executable, debugger))
    path = loader_path(debugger)
    if not os.path.isfile(path):  # a broken install: say so, but the contract is the last line
        sys.stderr.write("pyspy-repl %s-path: error: %s is missing (reinstall pyspy-repl)\n" % (debugger, path))
        return 1
    sys.stdout.write(path + "\n")
    return 0
