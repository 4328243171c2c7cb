"""Reading remote memory for the object reader: bounds, budgets and batching.

Remote memory is untrusted (the target keeps running, or the pointer we were
given is stale), so every read here is bounded: one public call reads at most
``MAX_TOTAL_READ`` bytes, and every byte read is also charged to the
snapshot's ``WorkBudget``.  An unreadable address is reported as
``CorruptDataError`` by the public methods (for an object walk, an address
that cannot be read *is* garbage).

The reader keeps per-call state (a small cache of object heads fetched in
batches), so one reader must not be shared between threads.
"""
from __future__ import annotations

import struct
from itertools import repeat

from ..budget import Unlimited, WorkBudget
from ..errors import CorruptDataError, MemoryReadError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Dict, Iterable, Optional, TypeVar

    _T = TypeVar("_T")


#: Most items read from one container (list, tuple, dict, set, instance dict).
MAX_ITEMS = 10_000
#: Default cap on characters decoded by ``string`` and bytes by ``bytes_value``.
MAX_STR_CHARS = 1 << 20
#: Largest int read, in digits (600 000 bits); larger ones are shown as a placeholder.
MAX_INT_DIGITS = 20_000
#: Longest type chain (tp_base links) followed.
MAX_BASES = 64
#: Longest C string (tp_name) read.
MAX_CSTRING = 1024
#: Bytes read by one public call before giving up (a garbage size would otherwise read gigabytes).
MAX_TOTAL_READ = 64 << 20
#: Objects rendered by one ``repr`` call; past this, values show as ``...``.
MAX_VISITS = 50_000
#: Dict entries / set slots scanned by one walk (a sane table is far smaller).
MAX_TABLE = 1 << 24
#: Bytes fetched per object when prefetching the heads of a container's items.
HEAD_PREFETCH = 64
#: Entries read per system call when scanning dict and set tables.
TABLE_CHUNK = 1024
#: Highest user-space address on x86-64 / aarch64 (47-48 bit address spaces).
MAX_ADDRESS = 1 << 48

_U64 = struct.Struct("<Q")


class CallCapError(CorruptDataError):
    """One public call reached ``MAX_TOTAL_READ``: the rest of that call gives up too."""


def entry(method: Callable[..., _T]) -> Callable[..., _T]:
    """Wrap a public method: fresh per-call budget at the outermost call, MemoryReadError -> corrupt.
    A call made inside another (most of a dump's: a repr reads names, a dict its keys) only
    turns the error: it is a third of the wrapper's work."""

    def wrapper(self: "RemoteReader", *args, **kwargs):
        if self._calls:  # inside another public call: that one holds the budget and the heads
            try:
                return method(self, *args, **kwargs)
            except MemoryReadError as e:
                raise CorruptDataError("object memory unreadable: %s" % e) from e
        if not self._held:
            self._heads = {}
        self._bytes_read = 0
        self._visits = 0
        self._calls = 1
        try:
            return method(self, *args, **kwargs)
        except MemoryReadError as e:
            raise CorruptDataError("object memory unreadable: %s" % e) from e
        finally:
            self._calls = 0
            if not self._held:
                self._heads = {}

    # what functools.wraps would copy (not imported: it costs start-up)
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = method.__name__, method.__qualname__, method.__doc__
    wrapper.__module__, wrapper.__wrapped__ = method.__module__, method
    return wrapper


def check_addr(addr: int, what: str) -> None:
    if addr <= 0 or addr >= MAX_ADDRESS or addr & 7:
        raise CorruptDataError("implausible %s address 0x%x" % (what, addr))


class RemoteReader:
    """Bounded, budgeted, batched reads through a ``MemoryReader`` for one ``Layout``."""

    def __init__(self, memory, layout, budget: Optional[WorkBudget] = None):
        self.memory = memory
        self.layout = layout
        self.facts = layout.facts
        self.budget = budget if budget is not None else Unlimited()
        self._heads: Dict[int, bytes] = {}
        self._bytes_read = 0
        self._visits = 0
        self._calls = 0
        self._held = 0

    def _read(self, addr: int, size: int) -> bytes:
        """One bounded read, served from the prefetched object heads when they cover it."""
        head = self._heads.get(addr)
        if head is not None and len(head) >= size:
            return head[:size]
        if addr <= 0 or addr >= MAX_ADDRESS:
            raise CorruptDataError("implausible address 0x%x" % addr)
        if size < 0:
            raise CorruptDataError("refusing to read %d bytes at 0x%x" % (size, addr))
        self._bytes_read += size
        if self._bytes_read > MAX_TOTAL_READ:
            raise CallCapError("refusing to read %d more bytes at 0x%x (per-call cap reached)" % (size, addr))
        self.budget.charge(size)
        data = self.memory.read(addr, size)
        if self._held:
            self._heads[addr] = data  # while heads are held, a second read of it is free too
        return data

    def _read_in(self, obj_addr: int, addr: int, size: int) -> bytes:
        """Read part of the object at ``obj_addr`` (its prefetched head often already holds it)."""
        head = self._heads.get(obj_addr)
        start = addr - obj_addr
        if head is not None and 0 <= start and start + size <= len(head):
            return head[start:start + size]
        return self._read(addr, size)

    def _ptr(self, addr: int) -> int:
        return _U64.unpack(self._read(addr, 8))[0]

    def _prefetch(self, addrs: Iterable[int], size: int = HEAD_PREFETCH) -> None:
        """Read the head of many objects in one batched call (missing ones are read later, singly).
        A range that faulted is kept as None, which every reader of the heads takes as absent."""
        heads = self._heads
        wanted = sorted({a for a in addrs if 0 < a < MAX_ADDRESS and not a & 7}.difference(heads))
        if len(wanted) < 2:
            return
        self._bytes_read += size * len(wanted)
        if self._bytes_read > MAX_TOTAL_READ:
            return
        self.budget.charge(size * len(wanted))
        heads.update(zip(wanted, self.memory.read_many(list(zip(wanted, repeat(size))))))

    def hold_heads(self, addrs: Iterable[int], size: int = HEAD_PREFETCH) -> None:
        """Prefetch the heads of many objects in one read and keep them across public calls
        until ``release_heads()``: a caller about to decode several small objects it points
        at (a code object's names, file name and tables) pays one system call, not ~30."""
        self._held += 1
        self._prefetch(addrs, size)

    def release_heads(self) -> None:
        self._held = max(0, self._held - 1)
        if not self._held and not self._calls:
            self._heads = {}

    def _cstring(self, addr: int, cap: int = MAX_CSTRING) -> str:
        """A NUL-terminated C string, read page by page so we never run off a mapping."""
        out = b""
        while len(out) < cap:
            page_left = 4096 - ((addr + len(out)) & 4095)
            chunk = self._read(addr + len(out), min(page_left, cap - len(out)))
            nul = chunk.find(b"\0")
            if nul >= 0:
                return (out + chunk[:nul]).decode("utf-8", "replace")
            out += chunk
        raise CorruptDataError("C string at 0x%x longer than %d bytes" % (addr, cap))
