"""Remembered stack tails: everything below a thread's innermost frame, checked in a few compares.

Why: a sampler sees the same stack pass after pass, and only the innermost
frame runs.  The frames below it are suspended in calls, and a suspended
3.11+ frame's memory (header, locals, value stack) is not written until its
callee returns.  So a walk from the innermost frame's caller reads the same
bytes as last time, and gives the same frames, if those bytes are the same.
A tail keeps the byte ranges that walk read (one span per data-stack chunk
copy, since the frames of one chunk lie in one block, plus each frame read
outside any copy: the eval loop's shim frames, generator frames) and the
frames it gave; a later walk that finds the same bytes takes the frames
without decoding them.  Any byte that differs (a frame object created, a
local written through ``f_locals``, a new call) makes it walk as usual and
remember the new tail.  A tail's code objects are not re-checked each pass
(``CodeCache.stale_hits``): frames whose every byte is the same still hold
their references to them, so none was freed for another to take its
address.  The periodic ``CodeCache.revalidate`` still covers them, and
dropping the code cache's stale entries drops the tails too.
"""
from __future__ import annotations


from ..errors import MemoryReadError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


#: Tails kept, and the bytes their checks hold, before the table is emptied.
MAX_TAILS = 4096
MAX_TAIL_BYTES = 32 << 20


class Tail:
    """The walk from one frame address down: the bytes it depended on and what it found."""

    __slots__ = ("checks", "outside", "frames", "addresses", "shim_first", "models", "stacks", "size")

    def __init__(self, checks: List[Tuple[int, int, int, bytes]], frames: list, addresses: frozenset,
                 shim_first: bool):
        self.checks = checks  # (segment start or -1 for a read outside the copies, address, size, bytes)
        self.outside = [(address, size, data) for segment, address, size, data in checks if segment < 0]
        self.frames = frames  # RawFrames, shared: never changed once kept
        self.addresses = addresses  # every frame address the walk visited (shims too)
        self.shim_first = shim_first  # the walk began at an eval-loop entry shim
        self.models: Optional[tuple] = None  # the frames' stack-only models, built once by FrameBuilder
        #: id(innermost model) -> (that model,) + models: the whole stack, one tuple per innermost
        #: frame met above this tail, so a sampler hands the same tuple again (kept: ids stay valid)
        self.stacks: Dict[int, tuple] = {}
        self.size = sum(c[2] for c in checks)

    def holds(self, chunks, read) -> bool:
        """Whether the target still has the bytes this tail was walked from."""
        for segment, address, size, expected in self.checks:
            if segment >= 0:
                found = chunks.find(address, size)
                if found is None:
                    return False
                data, base, _ = found
                if data[base:base + size] != expected:
                    return False
        return self.holds_outside(read)

    def holds_outside(self, read) -> bool:
        """``holds`` for the checks read outside the copies only: for a caller that knows the
        copies are byte for byte those this tail was last found to hold in."""
        for address, size, expected in self.outside:
            try:
                if read(address, size) != expected:
                    return False
            except MemoryReadError:
                return False
        return True


class TailRecorder:
    """Collects what a walk reads from one frame down, then makes the ``Tail``."""

    __slots__ = ("visits", "segments")

    def __init__(self):
        self.visits: List[Tuple[int, int, int, Optional[bytes]]] = []
        self.segments: Dict[int, bytes] = {}

    def visit(self, address: int, size: int, segment: int, data: bytes) -> None:
        """One frame header read: from the copy starting at ``segment`` (kept whole, sliced at the
        end), or, with ``segment`` -1, read on its own (``data`` is exactly those bytes)."""
        if segment >= 0:
            self.segments[segment] = data
            self.visits.append((address, size, segment, None))
        else:
            self.visits.append((address, size, -1, data[:size]))

    def tail(self, frames: list, shim_first: bool) -> Tail:
        spans: Dict[int, List[int]] = {}
        checks: List[Tuple[int, int, int, bytes]] = []
        for address, size, segment, data in self.visits:
            if segment < 0:
                checks.append((-1, address, size, data))
                continue
            span = spans.get(segment)
            if span is None:
                spans[segment] = [address, address + size]
            else:
                span[0] = min(span[0], address)
                span[1] = max(span[1], address + size)
        for segment, (low, high) in spans.items():
            data = self.segments[segment]
            checks.append((segment, low, high - low, data[low - segment:high - segment]))
        addresses = frozenset(v[0] for v in self.visits)
        return Tail(checks, frames, addresses, shim_first)


class Tails:
    """Tails by the address of their first frame, bounded in count and bytes."""

    __slots__ = ("table", "size")

    def __init__(self):
        self.table: Dict[int, Tail] = {}
        self.size = 0

    def get(self, address: int) -> Optional[Tail]:
        return self.table.get(address)

    def keep(self, address: int, tail: Tail) -> None:
        old = self.table.get(address)
        if old is not None:
            self.size -= old.size
        elif len(self.table) >= MAX_TAILS or self.size + tail.size > MAX_TAIL_BYTES:
            self.clear()
        self.table[address] = tail
        self.size += tail.size

    def clear(self) -> None:
        self.table = {}
        self.size = 0


__all__ = ["Tail", "TailRecorder", "Tails"]
