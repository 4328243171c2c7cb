"""A snapshot's total work budget: bytes read and objects visited.

Every walk is bounded piece by piece (frames per thread, items per container,
bytes per string), but a corrupted target can still make many bounded pieces
add up to minutes of work.  One ``WorkBudget`` is shared by the walker, the
code cache and the object reader of a ``Target`` and reset at the start of
each snapshot; exceeding it stops the snapshot with ``WorkBudgetError``.
Charging is two additions and a comparison, cheap enough for the hot path.
"""
from __future__ import annotations

from .errors import WorkBudgetError

#: Bytes one snapshot may read (a 1,000-thread process with deep stacks reads a few MiB;
#: with locals, each repr reads at most 64 MiB and usually a few hundred bytes).
MAX_BYTES = 256 << 20
#: Frames, code objects and rendered objects one snapshot may visit (10,000 frames deep
#: with locals visit about 100,000; a visit costs a few microseconds).
MAX_OBJECTS = 2_000_000


class WorkBudget:
    """Counts work since ``reset``; ``charge`` raises ``WorkBudgetError`` once past the limits."""

    __slots__ = ("max_bytes", "max_objects", "bytes", "objects")

    def __init__(self, max_bytes: int = MAX_BYTES, max_objects: int = MAX_OBJECTS):
        self.max_bytes = max_bytes
        self.max_objects = max_objects
        self.bytes = 0
        self.objects = 0

    def reset(self) -> None:
        self.bytes = 0
        self.objects = 0

    def charge(self, nbytes: int, objects: int = 0) -> None:
        self.bytes += nbytes
        self.objects += objects
        if self.bytes > self.max_bytes or self.objects > self.max_objects:
            raise WorkBudgetError("snapshot stopped after reading %d bytes and visiting %d objects "
                                  "(work budget: %d bytes, %d objects)"
                                  % (self.bytes, self.objects, self.max_bytes, self.max_objects))


#: A budget that is never exhausted, for readers used outside a snapshot.
class Unlimited(WorkBudget):
    __slots__ = ()

    def charge(self, nbytes: int, objects: int = 0) -> None:
        pass
