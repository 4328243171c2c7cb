"""Copies of a thread's 3.11+ data-stack chunks, read once per walk instead of once per frame.

Why: a thread's interpreter frames live in chunks of its data stack; reading
each chunk whole (bounded: size and count capped, every byte charged to the
budget) turns a deep stack's hundreds of small reads into a few large ones.
The newest chunk may come preloaded with only its used prefix (what a pause
copies); the rest is read only if a frame is looked up beyond it.
"""
from __future__ import annotations

import struct
from typing import List, Optional, Tuple

from ..budget import Unlimited, WorkBudget
from ..errors import MemoryReadError
from ..process.base import Process as MemoryReader

#: First read of a data-stack chunk; chunks are at least 16 KiB.
CHUNK_READ = 16 * 1024
MAX_CHUNK = 64 << 20
MAX_CHUNKS = 256


class DataStackChunks:
    """Copies of a thread's data-stack chunks, loaded newest first on demand."""

    __slots__ = ("memory", "next_addr", "loaded", "count", "budget", "first_read", "header", "partial")

    def __init__(self, memory: MemoryReader, newest: int, preloaded: Optional[bytes] = None,
                 budget: Optional[WorkBudget] = None, first_read: int = CHUNK_READ, header: int = 24):
        self.memory = memory
        self.header = header  # bytes before the first frame (facts.chunks.header_size)
        self.budget = budget if budget is not None else Unlimited()
        self.first_read = first_read
        self.next_addr = newest
        self.loaded: List[Tuple[int, int, bytes]] = []  # (start, end, data)
        self.count = 0
        self.partial: Optional[Tuple[int, int, int]] = None  # (start, chunk size, index in loaded)
        if preloaded is not None and newest:
            self._add(newest, preloaded, partial=True)

    def find(self, address: int, size: int) -> Optional[Tuple[bytes, int, int]]:
        """(chunk copy, offset of ``address`` in it, chunk start), loading older chunks as needed."""
        while True:
            for start, end, data in self.loaded:
                if start <= address and address + size <= end:
                    return data, address - start, start
            if self.partial is not None and self._complete_partial(address, size):
                continue
            if not self._load_next():
                return None

    def _load_next(self) -> bool:
        address = self.next_addr
        if not address or self.count >= MAX_CHUNKS:
            return False
        self.next_addr = 0
        self.budget.charge(self.first_read)
        try:
            data = self.memory.read(address, self.first_read)
        except MemoryReadError:
            return False
        return self._add(address, data)

    def _add(self, address: int, data: bytes, partial: bool = False) -> bool:
        """Keep a copy of the chunk at ``address``.  ``partial``: ``data`` is only the used
        prefix up to the current frame (what a pause must copy); the rest of the chunk is
        read only if a frame is ever looked up beyond it."""
        self.count += 1
        self.next_addr = 0
        if len(data) < self.header:
            return False
        previous, size = struct.unpack_from("<QQ", data, 0)
        if size > MAX_CHUNK or size < self.header:
            return False
        if size > len(data) and not partial:
            self.budget.charge(size)
            try:
                data = self.memory.read(address, size)
            except MemoryReadError:
                return False
        elif size < len(data):
            data = data[:size]
        self.loaded.append((address, address + len(data), data))
        if partial and size > len(data):
            self.partial = (address, size, len(self.loaded) - 1)
        self.next_addr = previous
        return True

    def _complete_partial(self, address: int, size: int) -> bool:
        """A look-up beyond the copied prefix of the newest chunk: read the whole chunk."""
        start, chunk_size, index = self.partial
        self.partial = None
        if not (start <= address and address + size <= start + chunk_size):
            return False
        self.budget.charge(chunk_size)
        try:
            data = self.memory.read(start, chunk_size)
        except MemoryReadError:
            return False
        self.loaded[index] = (start, start + chunk_size, data)
        return True
