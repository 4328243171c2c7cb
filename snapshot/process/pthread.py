"""OS thread ids of threads CPython knows only by ``pthread_t`` (before 3.11).

``pthread_t`` is the address of glibc's ``struct pthread``, whose ``tid``
field sits at an offset that differs between glibc builds; it is found by
probing for the target's known thread ids rather than assumed, and verified
again on every use.
"""
from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Dict, Iterable, List, Optional


PTHREAD_PROBE = 2048
#: glibc x86-64 keeps ``tid`` here; tried first, but always verified.
LIKELY_TID_OFFSETS = (0x2D0, 0xD0)


class PthreadTidFinder:
    """Maps pthread_t values to OS thread ids (as the target knows them) by reading struct pthread."""

    def __init__(self, memory, known_tids: Callable[[], Iterable[int]]):
        self.memory = memory
        self.known_tids = known_tids
        self.offset: Optional[int] = None

    def native_ids(self, thread_ids: List[int]) -> Dict[int, int]:
        tids = set(self.known_tids())
        if not thread_ids or not tids:
            return {}
        blocks = self.memory.read_many([(t, PTHREAD_PROBE) for t in thread_ids])
        if self.offset is None or not self._consistent(self.offset, blocks, tids):
            self.offset = self._probe(blocks, tids)
        if self.offset is None:
            return {}
        result = {}
        for thread_id, block in zip(thread_ids, blocks):
            if block is not None:
                value = struct.unpack_from("<i", block, self.offset)[0]
                if value in tids:
                    result[thread_id] = value
        return result

    def _consistent(self, offset: int, blocks, tids) -> bool:
        values = [struct.unpack_from("<i", b, offset)[0] for b in blocks if b is not None]
        return bool(values) and all(v in tids for v in values) and len(set(values)) == len(values)

    def _probe(self, blocks, tids) -> Optional[int]:
        candidates = list(LIKELY_TID_OFFSETS) + [o for o in range(0, PTHREAD_PROBE - 4, 4)
                                                  if o not in LIKELY_TID_OFFSETS]
        for offset in candidates:
            if self._consistent(offset, blocks, tids):
                return offset
        return None
