"""A sampler's plan prepared once: its iovecs and its buffer.

Why: a steady stack repeats its plan (the ranges the last pass read) pass after pass, and
building iovecs range by range cost more than the read itself; a plan is prepared once and
read in one ``process_vm_readv`` as long as it holds.
"""
from __future__ import annotations

import struct

from . import libc

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Sequence, Tuple


_IOVec = libc.IOVec
_process_vm_readv = libc.process_vm_readv
_IOV = struct.Struct("QQ")


def _iovecs(count: int, base: int, ranges: Sequence[Tuple[int, int]]):
    """The local and remote iovec arrays of one ``process_vm_readv`` (ranges land one after
    another from local address ``base``), packed with ``struct`` into one buffer: filling
    ctypes structures field by field cost more than the system call for a hundred ranges."""
    vectors = bytearray(32 * count)
    pack = _IOV.pack_into
    position = base
    remote_at = 16 * count
    for j, (address, size) in enumerate(ranges):
        pack(vectors, 16 * j, position, size)
        pack(vectors, remote_at + 16 * j, address, size)
        position += size
    array = _IOVec * count
    return array.from_buffer(vectors), array.from_buffer(vectors, remote_at)


class PreparedPlan:
    """One plan's iovecs and buffer, built once: a steady stack repeats its plan pass after
    pass, and filling ctypes structures range by range costs more than the read itself."""

    __slots__ = ("plan", "buffer", "local", "remote", "count", "total", "spans", "where", "raw")

    @classmethod
    def of(cls, plan: List[Tuple[int, int]], max_ranges: int, max_read: int) -> Optional["PreparedPlan"]:
        """The plan prepared, or None when one call cannot read it (too many ranges, or a range
        no read would be allowed)."""
        if len(plan) > max_ranges or any(not (0 < s <= max_read and a > 0) for a, s in plan):
            return None
        self = cls()
        self.plan = plan
        self.count = n = len(plan)
        self.total = sum(s for _, s in plan)
        self.buffer = libc.create_string_buffer(self.total)
        base = libc.addressof(self.buffer)
        self.local, self.remote = _iovecs(n, base, plan)
        spans = []
        position = 0
        for key in plan:
            spans.append((key, position, position + key[1]))
            position += key[1]
        self.spans = spans
        self.where = {key: (start, end) for key, start, end in spans}
        self.raw = None
        return self

    def read(self, memory) -> Optional[bytes]:
        """The whole plan's bytes in one call (each range at its ``where``), or None when it did
        not read whole (the caller then takes ``_read_many``, which knows faults and errors)."""
        memory.read_calls += 1
        got = _process_vm_readv(memory.pid, self.local, self.count, self.remote, self.count, 0)
        if got != self.total:
            return None
        raw = self.raw = self.buffer.raw
        return raw


__all__ = ["PreparedPlan"]
