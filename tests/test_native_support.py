"""Helpers of the native-frame tests (no tests here): a live Process adapter, gdb as the oracle.

``LiveAdapter`` stands in for ``snapshot.process.live.LiveProcess`` until that
lands: memory through ``ProcessMemory``, ``/proc/PID/maps`` for mappings and
mapped files (load bias, build-id), registers with PTRACE_GETREGS while
``snapshot.pause.paused`` holds the threads.
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, List

from snapshot.memory import ProcessMemory, parse_maps
from snapshot.native.elf import PT_LOAD, ElfFile, ElfFormatError
from snapshot.process import ptrace
from snapshot.process.base import MappedFile, MemoryMap


class LiveAdapter:
    def __init__(self, pid: int):
        self.pid = pid
        self.memory = ProcessMemory(pid)
        self.capabilities = frozenset({"live", "pausable", "registers", "files"})

    def read(self, address, size):
        return self.memory.read(address, size)

    def read_many(self, requests):
        return self.memory.read_many(requests)

    def maps(self) -> List[MemoryMap]:
        with open("/proc/%d/maps" % self.pid) as f:
            return [MemoryMap(m.start, m.end, m.perms, m.offset, m.path) for m in parse_maps(f.read())]

    def mapped_files(self) -> List[MappedFile]:
        spans: Dict[str, list] = {}
        for m in self.maps():
            if not m.path.startswith("/") or m.path.endswith(" (deleted)"):
                continue
            span = spans.setdefault(m.path, [m.start, m.end, None])
            span[0] = min(span[0], m.start)
            span[1] = max(span[1], m.end)
            if m.offset == 0 and span[2] is None:
                span[2] = m.start
        out = []
        for path, (start, end, base) in spans.items():
            local = "/proc/%d/root%s" % (self.pid, path)
            try:
                elf = ElfFile(local)
            except ElfFormatError:
                continue
            try:
                loads = [s.vaddr for s in elf.segments if s.type == PT_LOAD]
                first = (min(loads) & ~0xFFF) if loads else 0
                bias = 0 if elf.type == 2 else (base if base is not None else start) - first
                out.append(MappedFile(path, start, end, bias, elf.build_id(), local))
            finally:
                elf.close()
        return sorted(out, key=lambda f: f.start)

    def registers(self, tid):
        return ptrace.get_registers(tid)

    def threads(self):
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % self.pid))


GDB_SCRIPT = r'''
import gdb
gdb.execute("set pagination off")
gdb.execute("set print frame-arguments none")
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


def gdb_stacks(pid: int, workdir: str) -> Dict[int, list]:
    """{tid: [(pc, kind, name, from_debug_info)]} as gdb unwinds it (inline frames included)."""
    script = os.path.join(workdir, "gdb_bt.py")
    with open(script, "w") as f:
        f.write(GDB_SCRIPT)
    out = subprocess.run(["gdb", "-nx", "-batch", "-p", str(pid), "-ex", "source " + script],
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
