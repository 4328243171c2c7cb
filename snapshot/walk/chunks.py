"""What one pause copies of each thread's frames, decoded after the pause by the walker.

Why: the target is stopped only while raw words are copied.  Inside the pause
the walker copies each thread's state, the used part of its newest 3.11+
data-stack chunk (older chunks when the chain leads there) and the frames it
finds outside any chunk, all threads' requests batched into a few reads
(every walk bounded: chunk size and count capped, every byte charged to the
budget); after the detach the ordinary walk finds every frame header in these
copies instead of the target's memory.
"""
from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Tuple


#: First read of a data-stack chunk; chunks are at least 16 KiB.
CHUNK_READ = 16 * 1024
MAX_CHUNK = 64 << 20
MAX_CHUNKS = 256
#: Deepest stack walked (frames); the chase through copies stops at twice this.
MAX_DEPTH = 20000

_U64 = struct.Struct("<Q")


class _Copies:
    """What one pause copied of one thread's frames: the used part of its newest data-stack
    chunk, older chunks, and frames found outside any chunk (the eval loop's shim frames on
    the C stack, generator frames in the heap), as (start, end, bytes) segments.

    Filled inside the pause by ``Walker.copy_threads``; decoded after it by the ordinary walk,
    which finds every frame header in these copies instead of the target's memory.
    """

    __slots__ = ("segments", "older", "chunks", "steps", "last", "outside")

    def __init__(self):
        self.segments: List[Tuple[int, int, bytes]] = []
        self.outside: List[int] = []  # frames copied on their own (outside any chunk copy)
        self.older = 0  # the next older chunk not copied yet
        self.chunks = 0
        self.steps = 0  # frames followed by the chase (bounded)
        self.last: Tuple[int, int, bytes] = (0, 0, b"")

    def add(self, start: int, data: bytes) -> None:
        self.segments.append((start, start + len(data), data))

    def add_chunk(self, start: int, data: Optional[bytes], header: int) -> Optional[int]:
        """Keep a chunk copy; returns the chunk's size when ``data`` holds only its start."""
        self.chunks += 1
        self.older = 0
        if data is None or len(data) < header:
            return None
        previous, size = struct.unpack_from("<QQ", data, 0)
        if size > MAX_CHUNK or size < header:
            return None
        if size < len(data):
            data = data[:size]
        self.add(start, data)
        if self.chunks < MAX_CHUNKS:
            self.older = previous
        return size

    def find(self, address: int, size: int) -> Optional[Tuple[bytes, int, int]]:
        """(copy, offset of ``address`` in it, copy start), or None when nothing copied holds it."""
        for start, end, data in self.segments:
            if start <= address and address + size <= end:
                return data, address - start, start
        return None

    def chase(self, address: int, off_previous: int, header: int) -> int:
        """Follow ``previous`` links through the copies; the first address they do not hold,
        or 0 at the end of the chain (or when the walk bound is reached)."""
        start, end, data = self.last
        unpack = _U64.unpack_from
        steps = self.steps
        while address and steps < 2 * MAX_DEPTH:
            if not (start <= address and address + header <= end):
                for segment in self.segments:
                    if segment[0] <= address and address + header <= segment[1]:
                        start, end, data = segment
                        break
                else:
                    self.steps, self.last = steps, (start, end, data)
                    return address
            address = unpack(data, address - start + off_previous)[0]
            steps += 1
        self.steps, self.last = steps, (start, end, data)
        return 0


class ThreadCopy:
    """One thread's raw words as one pause copied them: its thread state, current frame and
    frame memory (``_Copies`` for data-stack frames, a dict address -> bytes for frame objects).

    ``window``: ((chunk address, bytes read), offset of the current frame in them) when the
    current frame lies in the newest chunk's copy: what moves while the thread runs is there,
    from that offset on (``steadypass``)."""

    __slots__ = ("tstate_addr", "raw", "frame", "memory", "window")

    def __init__(self, tstate_addr: int, raw: bytes, frame: int, memory, window=None):
        self.tstate_addr = tstate_addr
        self.raw = raw
        self.frame = frame
        self.memory = memory
        self.window = window


__all__ = ["CHUNK_READ", "MAX_CHUNK", "MAX_CHUNKS", "MAX_DEPTH", "ThreadCopy"]
