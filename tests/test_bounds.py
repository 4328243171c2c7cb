"""Bounded decoding and the snapshot work budget (issue 12, item 14).

* a line table is never decoded past the code it describes;
* a code object whose line table is far larger than its bytecode is garbage:
  rejected fast, and not cached (a later walk reads it again);
* a snapshot past its work budget stops with ``WorkBudgetError``, and the
  next snapshot (with room in the budget) is whole again.
"""
from __future__ import annotations

import struct
import subprocess
import time

import pytest

import snapshot
from layouts import get_layout
from snapshot.errors import SnapshotError, WorkBudgetError
from snapshot.memory import ProcessMemory
from snapshot.objects import ObjectReader
from snapshot.walk.codecache import CodeCache
from snapshot.walk.linetable import decode_linetable_310, decode_lnotab, decode_locations

PROBE = r'''
import sys, time
def victim(a):
    b = a + 1
    return b
BIG = tuple("n%d" % i for i in range(5000))
print("%d %d %d %d" % (sys.version_info[0], sys.version_info[1], id(victim.__code__), id(BIG)), flush=True)
time.sleep(1000)
'''


class Patched:
    """A memory source with some bytes replaced (a synthetic corruption of a real object)."""

    def __init__(self, memory, patches):
        self.memory = memory
        self.patches = patches  # {address: bytes}
        self.pid = memory.pid
        self.reads = 0

    def _apply(self, address, data):
        data = bytearray(data)
        for where, value in self.patches.items():
            for i, byte in enumerate(value):
                if 0 <= where + i - address < len(data):
                    data[where + i - address] = byte
        return bytes(data)

    def read(self, address, size):
        self.reads += size
        return self._apply(address, self.memory.read(address, size))

    def read_many(self, requests):
        return [None if d is None else self._apply(a, d)
                for (a, _), d in zip(requests, self.memory.read_many(requests))]

    def maps(self):
        return self.memory.maps()


@pytest.mark.parametrize("decoder", [decode_lnotab, decode_linetable_310, decode_locations])
def test_decoding_stops_at_the_end_of_the_code(decoder):
    table = bytes([0x80 | (13 << 3) | 7, 2]) * 1_000_000   # 2 MB of plausible entries
    started = time.monotonic()
    decoded = decoder(table, 1, 64)
    assert len(decoded.starts) <= 64
    assert time.monotonic() - started < 1.0


@pytest.fixture
def victim(python):
    proc = subprocess.Popen([python.path, "-c", PROBE], stdout=subprocess.PIPE, text=True)
    try:
        major, minor, code_addr, big = (int(x) for x in proc.stdout.readline().split())
        yield proc.pid, get_layout((major, minor)), code_addr, big
    finally:
        proc.kill()
        proc.wait()


def _table_addr(memory, layout, code_addr):
    co = layout.PyCodeObject
    field = "co_linetable" if "co_linetable" in co else "co_lnotab"
    return struct.unpack("<Q", memory.read(code_addr + co.fields[field].offset, 8))[0]


def test_a_huge_line_table_is_rejected_and_not_cached(victim):
    pid, layout, code_addr, _ = victim
    memory = ProcessMemory(pid)
    good = CodeCache(memory, layout, ObjectReader(memory, layout)).get(code_addr)
    assert good is not None and good.name == "victim"
    assert good.line_for(0) >= 2
    table = _table_addr(memory, layout, code_addr)
    size_field = table + layout.PyVarObject.ob_size
    corrupt = Patched(memory, {size_field: struct.pack("<q", 3_000_000)})
    codes = CodeCache(corrupt, layout, ObjectReader(corrupt, layout))
    started = time.monotonic()
    assert codes.get(code_addr) is None
    assert time.monotonic() - started < 0.5
    assert corrupt.reads < 64 * 1024          # the table was never read
    assert len(codes) == 0                    # nor cached
    corrupt.patches.clear()                   # the memory is sane again: the code object is read anew
    assert codes.get(code_addr).name == "victim"


def test_garbage_code_size_is_rejected(victim):
    pid, layout, code_addr, _ = victim
    memory = ProcessMemory(pid)
    co = layout.PyCodeObject
    if "co_code" in co:
        code_bytes = struct.unpack("<Q", memory.read(code_addr + co.co_code, 8))[0]
        where = code_bytes + layout.PyVarObject.ob_size
    else:
        where = code_addr + layout.PyVarObject.ob_size
    corrupt = Patched(memory, {where: struct.pack("<q", 1 << 40)})
    assert CodeCache(corrupt, layout, ObjectReader(corrupt, layout)).get(code_addr) is None


def test_names_must_match_the_declared_count(victim):
    """A names pointer moved to another tuple would make every frame render thousands of "locals"."""
    pid, layout, code_addr, big = victim
    memory = ProcessMemory(pid)
    co = layout.PyCodeObject
    field = "co_localsplusnames" if "co_localsplusnames" in co else "co_varnames"
    corrupt = Patched(memory, {code_addr + co.fields[field].offset: struct.pack("<Q", big)})
    codes = CodeCache(corrupt, layout, ObjectReader(corrupt, layout))
    assert codes.get(code_addr) is None
    assert corrupt.reads < 64 * 1024   # rejected before reading 5,000 names


def test_slot_names_are_read_when_asked(victim):
    """3.11+: a plain stack needs only the slot count; the names are read on first use, and
    names turned to garbage meanwhile give a typed error there, not a wrong name."""
    pid, layout, code_addr, _ = victim
    memory = ProcessMemory(pid)
    co = layout.PyCodeObject
    counting = Patched(memory, {})
    info = CodeCache(counting, layout, ObjectReader(counting, layout)).get(code_addr)
    assert info.nslots == 2 and info.nargs == 1
    before = counting.reads
    assert info.slot_names == ("a", "b") and info.slot_kinds == ("local", "local")
    if "co_localsplusnames" not in co:
        assert counting.reads == before       # before 3.11 they come with the code object
        return
    assert counting.reads > before
    names = struct.unpack("<Q", memory.read(code_addr + co.co_localsplusnames, 8))[0]
    corrupt = Patched(memory, {names + layout.PyTupleObject.ob_item: struct.pack("<Q", 0x10)})
    lazy = CodeCache(corrupt, layout, ObjectReader(corrupt, layout)).get(code_addr)
    assert lazy is not None and lazy.nslots == 2 and lazy.function == "victim"
    with pytest.raises(SnapshotError):
        lazy.slot_names


def test_work_budget_stops_a_snapshot(victim):
    pid = victim[0]
    with snapshot.attach(pid) as target:
        target.budget.max_bytes = 64
        with pytest.raises(WorkBudgetError):
            target.snapshot(locals=True)
        target.budget.max_bytes = 1 << 30
        snap = target.snapshot(locals=True)
        assert snap.threads[0].frames[-1].function == "<module>"
        target.budget.max_objects = 0
        with pytest.raises(WorkBudgetError):
            target.sample()
