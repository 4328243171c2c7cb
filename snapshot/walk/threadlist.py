"""The walker's second step: the thread states of one interpreter, along ``PyThreadState.next``.

Why its own module: the list is linked (a cold walk costs one read per thread) but rarely
changes between samples, so it carries its own shortcut: last time's addresses are re-read in
one batched call and kept if they still form the chain.  Bounded by ``MAX_THREADS`` and by
the addresses already seen.
"""
from __future__ import annotations

import struct

from ..errors import CorruptDataError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Tuple

MAX_THREADS = 4096

_U64 = struct.Struct("<Q")


class ThreadList:
    """Mixed into ``Walker``: the thread states (the walker's memory and thread-state offsets)."""

    def thread_states(self, interp_addr: int, head: Optional[int] = None) -> List[Tuple[int, bytes]]:
        """Every thread state of the interpreter as (address, raw struct).

        The list is linked, so a cold walk costs one read per thread; but it
        rarely changes between samples, so last time's addresses are first
        re-read in one batched call and kept if they still form the chain.
        """
        if head is None:
            head = _U64.unpack(self.memory.read(interp_addr + self.interp_threads, 8))[0]
        known = self._known_tstates.get(interp_addr)
        if known and known[0] == head:
            raws = self.memory.read_many([(a, self.tstate_size) for a in known])
            if all(raws) and self._is_chain(known, raws, interp_addr):
                return list(zip(known, raws))
        result = self._thread_states_walk(interp_addr, head)
        if len(self._known_tstates) > 64:
            self._known_tstates.clear()
        self._known_tstates[interp_addr] = [a for a, _ in result]
        return result

    def _is_chain(self, addresses: List[int], raws: List[Optional[bytes]], interp_addr: int) -> bool:
        for i, raw in enumerate(raws):
            if _U64.unpack_from(raw, self.ts_interp)[0] != interp_addr:
                return False
            following = addresses[i + 1] if i + 1 < len(addresses) else 0
            if _U64.unpack_from(raw, self.ts_next)[0] != following:
                return False
        return True

    def _thread_states_walk(self, interp_addr: int, head: int) -> List[Tuple[int, bytes]]:
        result = []
        seen = set()
        address = head
        while address and len(result) < MAX_THREADS:
            if address in seen:
                break
            seen.add(address)
            raw = self.memory.read(address, self.tstate_size)
            if _U64.unpack_from(raw, self.ts_interp)[0] != interp_addr:
                raise CorruptDataError("thread state 0x%x does not belong to interpreter 0x%x" % (address, interp_addr))
            result.append((address, raw))
            address = _U64.unpack_from(raw, self.ts_next)[0]
        return result


__all__ = ["MAX_THREADS", "ThreadList"]
