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


#: For every eval-loop frame gdb can read the frame argument of (``f``, the PyFrameObject, up to 3.10;
#: ``frame``, the _PyInterpreterFrame, in 3.11/3.12; where optimized out, the caller's ``f``), the code it runs:
#: co_name and co_filename, read through the build's DWARF (2.7 str, or a compact ASCII str).
GDB_EVAL_SCRIPT = r'''
import gdb
gdb.execute("set pagination off")
gdb.execute("set backtrace past-main on")
EVALS = ("PyEval_EvalFrameEx", "_PyEval_EvalFrameDefault")

def text(obj):
    try:
        return obj.cast(gdb.lookup_type("PyStringObject").pointer())["ob_sval"].address.cast(
            gdb.lookup_type("char").pointer()).string()
    except gdb.error:
        pass
    ascii_type = gdb.lookup_type("PyASCIIObject")
    state = obj.cast(ascii_type.pointer()).dereference()["state"]
    if not (int(state["compact"]) and int(state["ascii"])):
        return None
    return (obj.cast(ascii_type.pointer()) + 1).cast(gdb.lookup_type("char").pointer()).string()

def frame_argument(frame):
    """The eval frame's frame argument; where the build optimized it out, the caller's ``f`` (a
    PyFrameObject * it passed and still holds: _PyEval_EvalCodeWithName, _PyFunction_FastCall...)."""
    for where, names in ((frame, ("f", "frame")), (frame.older(), ("f",))):
        for var in names:
            try:
                value = where.read_var(var) if where is not None else None
            except (gdb.error, ValueError):
                continue
            if value is None or value.is_optimized_out:
                continue
            target = value.type.strip_typedefs()
            if target.code != gdb.TYPE_CODE_PTR or target.target().strip_typedefs().tag not in (
                    "_frame", "_PyInterpreterFrame"):
                continue
            if int(value) != 0:
                return value
    return None

def code_of(frame):
    value = frame_argument(frame)
    if value is not None:
        try:
            code = value.dereference()["f_code"].cast(gdb.lookup_type("PyCodeObject").pointer())
            return text(code.dereference()["co_name"]), text(code.dereference()["co_filename"])
        except (gdb.error, gdb.MemoryError):
            return None
    return None

for inferior in gdb.inferiors():
    for thread in sorted(inferior.threads(), key=lambda t: t.ptid[1]):
        thread.switch()
        print("THREAD %d" % thread.ptid[1])
        frame = gdb.newest_frame()
        n = 0
        while frame is not None and n < 600:
            name = (frame.name() or "").split(".")[0]
            if frame.type() == gdb.NORMAL_FRAME and name in EVALS:
                found = code_of(frame)
                print("EVAL 0x%x %s" % (frame.pc(), "%s\t%s" % found if found and None not in found else "?"))
            n += 1
            try:
                frame = frame.older()
            except gdb.error:
                break
'''


def _run_gdb_script(pid: int, workdir: str, name: str, text: str) -> str:
    """gdb's output of a Python script sourced in a batch session attached to ``pid``."""
    script = os.path.join(workdir, name)
    with open(script, "w") as f:
        f.write(text)
    return subprocess.run(["gdb", "-nx", "-batch"] + gdb_debug_dirs() + ["-p", str(pid), "-ex", "source " + script],
                          capture_output=True, text=True, timeout=300).stdout


def parse_threads(out: str, pattern: str, row) -> Dict[int, list]:
    """{tid: [row(match) for each line matching ``pattern``]} from lines under ``THREAD tid``."""
    found: Dict[int, list] = {}
    current = None
    for line in out.splitlines():
        m = re.match(r"THREAD (\d+)$", line)
        if m:
            current = found.setdefault(int(m.group(1)), [])
            continue
        m = re.match(pattern, line)
        if m and current is not None:
            current.append(row(m))
    return found


def _eval_row(m) -> tuple:
    parts = m.group(2).split("\t")
    return (int(m.group(1), 16),) + (tuple(parts) if len(parts) == 2 else (None, None))


def _frame_row(m) -> tuple:
    return int(m.group(1), 16), int(m.group(2)), m.group(3), m.group(4) == "debug"


#: GDB_SCRIPT's frame lines: pc, kind, name, whether the name came from debug info.
FRAME_LINE = r"FRAME 0x([0-9a-f]+) (\d+) (\S+) (\w+)$"


def parse_frames(out: str) -> Dict[int, list]:
    """{tid: [(pc, kind, name, from_debug_info)]} from GDB_SCRIPT's output."""
    return parse_threads(out, FRAME_LINE, _frame_row)


def gdb_eval_codes(pid: int, workdir: str) -> Dict[int, list]:
    """{tid: [(pc, co_name, co_filename) or (pc, None, None)]}: gdb's eval-loop frames, innermost
    first, each with the code object its frame argument runs when gdb can read that argument."""
    out = _run_gdb_script(pid, workdir, "gdb_eval.py", GDB_EVAL_SCRIPT)
    return parse_threads(out, r"EVAL 0x([0-9a-f]+) (.*)$", _eval_row)


def gdb_debug_dirs() -> List[str]:
    """gdb options to look for debug files where the tool does (PYSPY_REPL_DEBUG_DIRS, set by
    tests/pythons.py for the sid interpreters' -dbg trees), so both name the same functions."""
    dirs = [d for d in os.environ.get("PYSPY_REPL_DEBUG_DIRS", "").split(os.pathsep) if d]
    if not dirs:
        return []
    return ["-iex", "set debug-file-directory %s" % os.pathsep.join(dirs + ["/usr/lib/debug"])]


def gdb_stacks(pid: int, workdir: str) -> Dict[int, list]:
    """{tid: [(pc, kind, name, from_debug_info)]} as gdb unwinds it (inline frames included)."""
    return parse_frames(_run_gdb_script(pid, workdir, "gdb_bt.py", GDB_SCRIPT))
