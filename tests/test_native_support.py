"""Helpers of the native-frame tests (no tests here): gdb as the oracle.

The tests read native frames through ``snapshot.process.live.LiveProcess``
(registers while its own ``paused()`` holds the threads), the Process the
tool itself uses.
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, List



GDB_SCRIPT = r'''
import gdb
gdb.execute("set pagination off")
gdb.execute("set print frame-arguments none")
gdb.execute("set backtrace past-main on")   # a main that is a real frame (3.6/3.7) is not the end
for inferior in gdb.inferiors():
    for thread in sorted(inferior.threads(), key=lambda t: t.ptid[1]):
        thread.switch()
        print("THREAD %d" % thread.ptid[1])
        frame = gdb.newest_frame()
        n = 0
        while frame is not None and n < 600:
            kind = frame.type()
            name = frame.name() or "??"
            fn = None
            try:
                fn = frame.function()
            except Exception:
                pass
            print("FRAME 0x%x %d %s %s" % (frame.pc(), kind, name, "debug" if fn is not None else "msym"))
            n += 1
            try:
                frame = frame.older()
            except gdb.error as e:
                print("ERROR %s" % e)
                break
'''


def gdb_debug_dirs() -> List[str]:
    """gdb options to look for debug files where the tool does (PYSPY_REPL_DEBUG_DIRS, set by
    tests/pythons.py for the sid interpreters' -dbg trees), so both name the same functions."""
    dirs = [d for d in os.environ.get("PYSPY_REPL_DEBUG_DIRS", "").split(os.pathsep) if d]
    if not dirs:
        return []
    return ["-iex", "set debug-file-directory %s" % os.pathsep.join(dirs + ["/usr/lib/debug"])]


def gdb_stacks(pid: int, workdir: str) -> Dict[int, list]:
    """{tid: [(pc, kind, name, from_debug_info)]} as gdb unwinds it (inline frames included)."""
    script = os.path.join(workdir, "gdb_bt.py")
    with open(script, "w") as f:
        f.write(GDB_SCRIPT)
    out = subprocess.run(["gdb", "-nx", "-batch"] + gdb_debug_dirs() + ["-p", str(pid), "-ex", "source " + script],
                         capture_output=True, text=True, timeout=300).stdout
    stacks: Dict[int, list] = {}
    current = None
    for line in out.splitlines():
        m = re.match(r"THREAD (\d+)$", line)
        if m:
            current = stacks.setdefault(int(m.group(1)), [])
            continue
        m = re.match(r"FRAME 0x([0-9a-f]+) (\d+) (\S+) (\w+)$", line)
        if m and current is not None:
            current.append((int(m.group(1), 16), int(m.group(2)), m.group(3), m.group(4) == "debug"))
    return stacks
