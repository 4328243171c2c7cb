"""Code objects, read once and cached by address.

A code object never changes while it is alive, so its names, file name and
decoded line table are read once; afterwards a frame costs only a dict
lookup.  ``revalidate`` re-reads the identifying header of cached entries in
one batched call so a long-running sampler notices when an address is freed
and reused by another code object.

A code object's line table is bounded by the size of its bytecode (an entry
covers at least one instruction and takes a few bytes), so a table much
larger than its code is garbage: the code object is rejected and nothing
about it is cached, and decoding never runs past the end of the code.
"""
from __future__ import annotations

import struct

from layouts import Layout

from ..budget import Unlimited, WorkBudget
from ..errors import CorruptDataError, MemoryReadError
from ..objects.base import MAX_ADDRESS
from ..process.base import Process as MemoryReader
from .linetable import DECODERS, LineTable

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
CO_VARARGS = 0x4
CO_VARKEYWORDS = 0x8
MAX_SLOTS = 65536
MAX_CACHE = 100_000
#: Largest bytecode accepted, in bytes (the largest real module code is a few MiB at most).
MAX_CODE_BYTES = 1 << 24
#: Largest line table accepted, in bytes.
MAX_LINE_TABLE = 1 << 22
#: A line table holds at most this many bytes per byte of bytecode, plus ``LINE_TABLE_SLACK``
#: (3.11+ entries cover >= 2 bytes of code in <= ~20 bytes; older tables add 2 bytes per 127
#: lines skipped, which the slack covers).
LINE_TABLE_PER_CODE_BYTE = 16
LINE_TABLE_SLACK = 4096


class CodeInfo:
    """What the walker needs from one code object.

    The names and kinds of its local slots are read only when something asks for them
    (locals, a pre-3.11 method name): a plain stack needs the slot count alone, and
    decoding every code object's name tuple was a seventh of a cold dump's walk."""

    __slots__ = ("address", "name", "qualname", "filename", "first_line", "code_offset", "_slot_names",
                 "_slot_kinds", "_load_slots", "nslots", "nargs", "needs_first_local", "_table",
                 "_raw_table", "_decoder", "_lines", "header", "function", "code_size")

    def __init__(self, address: int, name: str, qualname: Optional[str], filename: str, first_line: int,
                 code_offset: int, slot_names: Optional[Tuple[str, ...]], slot_kinds: Optional[Tuple[str, ...]],
                 nargs: int, raw_table: bytes, decoder, header: bytes, code_size: int = 1 << 62,
                 nslots: Optional[int] = None, load_slots=None):
        self.address = address
        self.name = name
        self.qualname = qualname
        self.filename = filename
        self.first_line = first_line
        self.code_offset = code_offset
        self._slot_names = slot_names
        self._slot_kinds = slot_kinds  # "local" | "cell" | "free" | "hidden" per slot
        #: () -> (names, kinds), for slots not read yet; raises a SnapshotError on garbage.
        self._load_slots = load_slots
        self.nslots = len(slot_names) if slot_names is not None else (nslots or 0)
        self.nargs = min(nargs, self.nslots)
        self.function = qualname or name
        # Before 3.11 there is no qualname: methods are named from self/cls, like py-spy.
        self.needs_first_local = (qualname is None and nargs > 0 and bool(slot_names)
                                  and slot_names[0] in ("self", "cls"))
        self._raw_table = raw_table
        self._decoder = decoder
        self._table: Optional[LineTable] = None
        self._lines: Dict[int, int] = {}
        self.header = header
        self.code_size = code_size  # bytes of bytecode: decoding never goes past it

    @property
    def slot_names(self) -> Tuple[str, ...]:
        if self._slot_names is None:
            self._read_slots()
        return self._slot_names

    @property
    def slot_kinds(self) -> Tuple[str, ...]:
        if self._slot_kinds is None:
            self._read_slots()
        return self._slot_kinds

    def _read_slots(self) -> None:
        names, kinds = self._load_slots()
        self._slot_names, self._slot_kinds, self._load_slots = names, kinds, None

    def line_for(self, offset: int) -> int:
        line = self._lines.get(offset)
        if line is None:
            table = self._table
            if table is None:
                # the first question decodes only as far as its answer (most get one question)
                table = self._table = self._decoder(self._raw_table, self.first_line, self.code_size, until=offset)
            elif not table.covers(offset):
                table = self._table = self._decoder(self._raw_table, self.first_line, self.code_size)
            if table.complete:
                self._raw_table = b""
            line = table.line_for(offset)
            if len(self._lines) < 4096:
                self._lines[offset] = line
        return line


#: Bytes prefetched per object a code object points at: most file names and line tables fit.
CODE_HEAD_PREFETCH = 256


class CodeCache:
    """Reads code objects through an ObjectReader and keeps them by address."""

    def __init__(self, memory: MemoryReader, layout: Layout, objects, code_type_addr: Optional[int] = None,
                 budget: Optional[WorkBudget] = None):
        self.memory = memory
        self.budget = budget if budget is not None else Unlimited()
        self.layout = layout
        self.objects = objects
        self.code_type_addr = code_type_addr
        self._entries: Dict[int, Optional[CodeInfo]] = {}
        self._hits: set = set()
        #: The last ``stale_hits`` that found nothing stale: (its hits, its header reads, the headers
        #: they matched).  Forgotten whenever an entry is added or dropped.
        self._last_check: Optional[tuple] = None
        co = layout.PyCodeObject
        self.co = co
        self.size = co.size
        self.ob_type = layout.PyObject.ob_type
        self.decoder = DECODERS[layout.facts.line_table]
        self.pointer_fields = tuple(name for name in (
            "co_name", "co_filename", "co_qualname", "co_linetable", "co_lnotab", "co_localsplusnames",
            "co_localspluskinds", "co_varnames", "co_cellvars", "co_freevars", "co_code") if name in co)
        fields = [co.co_filename, co.co_name, co.co_firstlineno]
        self.header_span = max(fields) + 8
        self.header_start = co.co_firstlineno if co.co_firstlineno < co.co_filename else co.co_filename
        f = layout.facts
        self.kind_bits = ((f.fast_hidden, "hidden"), (f.fast_cell, "cell"), (f.fast_free, "free"))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, address: int) -> Optional[CodeInfo]:
        """The code object at ``address``, or None if it is not one."""
        try:
            info = self._entries[address]
            self._hits.add(address)
            return info
        except KeyError:
            pass
        if not address:
            return None
        self.budget.charge(self.size, 1)
        try:
            info = self._read(address)
        except (MemoryReadError, CorruptDataError, UnicodeDecodeError, struct.error, ValueError):
            info = None  # not cached: a later walk reads it again (cheaply, the bounds come first)
        if len(self._entries) >= MAX_CACHE:
            self._entries.clear()
            self._last_check = None
        if info is not None:
            self._entries[address] = info
            self._last_check = None
        return info

    def peek(self, address: int) -> Optional[CodeInfo]:
        """The cached code object at ``address``, or None: never reads (a pause asks this)."""
        return self._entries.get(address)

    def peeker(self):
        """``peek`` without the method call, for a loop that asks it for every frame."""
        return self._entries.get

    def hit_recorder(self):
        """What a walk calls with the address of a cached entry it used without ``get``
        (a frame it remembered), so ``stale_hits`` checks that entry too."""
        return self._hits.add

    def begin(self) -> None:
        """Start a walk: remember which cached entries it relies on."""
        self._hits = set()

    def stale_hits(self) -> List[int]:
        """Cached entries used since ``begin`` that no longer hold the same code object.

        A code object can be freed and its address reused by another one (code
        exec'd at start-up, then a function defined later); its identifying
        header (names, file, first line, line table pointers) is re-read for
        every cached entry a walk used, in one batched call, and stale entries
        are dropped so the caller can resolve those frames again.
        """
        hits = self._hits
        self._hits = set()
        last = self._last_check
        if last is not None and last[0] == hits:
            # the same entries as the last check: their headers compared in one list comparison
            if self.memory.read_many(last[1]) == last[2]:
                return []
        addresses = [a for a in hits if self._entries.get(a) is not None]
        if not addresses:
            return []
        span = self.header_span - self.header_start
        requests = [(a + self.header_start, span) for a in addresses]
        results = self.memory.read_many(requests)
        stale = []
        for address, data in zip(addresses, results):
            if data != self._entries[address].header:
                del self._entries[address]
                stale.append(address)
        self._last_check = None if stale else (hits, requests, [self._entries[a].header for a in addresses])
        return stale

    def still_hold(self, addresses) -> bool:
        """Whether every code object at ``addresses`` is cached and reads the same header now: a
        pass made from the last one checks the few it takes stacks by key for, one read each,
        which a pass serves from its re-read (``stale_hits`` batches a whole walk's hits).
        A stale entry is dropped."""
        entries = self._entries
        start = self.header_start
        span = self.header_span - start
        read = self.memory.read
        for address in addresses:
            info = entries.get(address)
            if info is None:
                return False
            if read(address + start, span) != info.header:
                del entries[address]
                self._last_check = None
                return False
        return True

    def revalidate(self) -> int:
        """Drop entries whose memory no longer holds the same code object; returns how many."""
        addresses = [a for a, info in self._entries.items() if info is not None]
        if not addresses:
            return 0
        span = self.header_span - self.header_start
        results = self.memory.read_many([(a + self.header_start, span) for a in addresses])
        dropped = 0
        for address, data in zip(addresses, results):
            info = self._entries[address]
            if data is None or data != info.header:
                del self._entries[address]
                dropped += 1
        if dropped:
            self._last_check = None
        return dropped

    def _is_code_type(self, type_addr: int) -> bool:
        if self.code_type_addr is not None:
            return type_addr == self.code_type_addr
        if self.objects.type_name(type_addr) == "code":
            self.code_type_addr = type_addr
            return True
        return False

    def prefetch(self, addresses) -> None:
        """Read the code objects at ``addresses`` that are not cached yet, all at once: one
        read of their headers, one of the heads of the names, file names and tables they point
        at.  Why: a first walk met some forty code objects and read each apart (two system
        calls each, a fifth of a one-shot dump's); ``get`` then finds them cached.  Addresses
        that are no code object, or garbage, are left for ``get`` to judge as usual."""
        wanted = [a for a in dict.fromkeys(addresses) if a and a not in self._entries and 0 < a < MAX_ADDRESS]
        if len(wanted) < 2:
            return
        co = self.co
        found = []
        for address, raw in zip(wanted, self.memory.read_many([(a, self.size) for a in wanted])):
            if raw is not None and self._is_code_type(_U64.unpack_from(raw, self.ob_type)[0]):
                found.append((address, raw))
        offsets = [co.fields[f].offset for f in self.pointer_fields]
        objects = self.objects
        objects.hold_heads((_U64.unpack_from(raw, o)[0] for _, raw in found for o in offsets), CODE_HEAD_PREFETCH)
        try:
            for address, raw in found:
                if len(self._entries) >= MAX_CACHE:
                    break
                self.budget.charge(self.size, 1)
                try:
                    info = self._from_raw(address, raw)
                except (MemoryReadError, CorruptDataError, UnicodeDecodeError, struct.error, ValueError):
                    continue  # not cached: ``get`` reads it again and judges it alone
                self._entries[address] = info
                self._last_check = None
        finally:
            objects.release_heads()

    def _read(self, address: int) -> Optional[CodeInfo]:
        raw = self.memory.read(address, self.size)
        if not self._is_code_type(_U64.unpack_from(raw, self.ob_type)[0]):
            return None
        co = self.co
        objects = self.objects
        # One batched read of the heads of every object this code object points at (names,
        # file name, line table, name tuples, kinds), kept while it is decoded.
        objects.hold_heads((_U64.unpack_from(raw, co.fields[f].offset)[0] for f in self.pointer_fields),
                           CODE_HEAD_PREFETCH)
        try:
            return self._from_raw(address, raw)
        finally:
            objects.release_heads()

    def _from_raw(self, address: int, raw: bytes) -> CodeInfo:
        co = self.co
        get = lambda name: _U64.unpack_from(raw, co.fields[name].offset)[0]  # noqa: E731
        geti = lambda name: _I32.unpack_from(raw, co.fields[name].offset)[0]  # noqa: E731
        return self._decode(address, raw, get, geti)

    def _decode(self, address: int, raw: bytes, get, geti) -> CodeInfo:
        co = self.co
        objects = self.objects
        name = objects.string(get("co_name"), 1024)
        filename = objects.string(get("co_filename"), 4096)
        qualname = objects.string(get("co_qualname"), 1024) if "co_qualname" in co else None
        first_line = geti("co_firstlineno")
        flags = geti("co_flags")
        nargs = geti("co_argcount") + (geti("co_kwonlyargcount") if "co_kwonlyargcount" in co else 0)
        nargs += bool(flags & CO_VARARGS) + bool(flags & CO_VARKEYWORDS)
        table_field = "co_linetable" if "co_linetable" in co else "co_lnotab"
        table_addr = get(table_field)
        code_size = self._code_size(address, raw, get)
        table_size = objects.bytes_size(table_addr)
        if table_size > min(MAX_LINE_TABLE, LINE_TABLE_PER_CODE_BYTE * code_size + LINE_TABLE_SLACK):
            raise CorruptDataError("code object 0x%x: a %d-byte line table for %d bytes of code"
                                   % (address, table_size, code_size))
        self.budget.charge(table_size)
        raw_table = objects.bytes_value(table_addr, table_size)
        # The name tuples must be as long as the code object's own counts say: a pointer to
        # another tuple (or a garbage count) would make every frame render thousands of "locals".
        if "co_localsplusnames" in co:
            count = geti("co_nlocalsplus")
            if not 0 <= count <= MAX_SLOTS:
                raise CorruptDataError("code object 0x%x claims %d locals" % (address, count))
            names_addr, kinds_addr = get("co_localsplusnames"), get("co_localspluskinds")
            # The counts are checked now, from the heads already held (no read); the names
            # themselves are read when asked for.
            named = objects.sequence_len(names_addr) if names_addr else 0
            if named != count:
                raise CorruptDataError("code object 0x%x declares %d locals but names %d"
                                       % (address, count, named))
            kinded = objects.bytes_size(kinds_addr)
            if kinded != count:
                raise CorruptDataError("code object 0x%x: %d local kinds for %d locals"
                                       % (address, kinded, count))
            header = raw[self.header_start:self.header_span]
            return CodeInfo(address, name, qualname, filename, first_line, co.co_code_adaptive, None, None,
                            nargs, raw_table, self.decoder, header, code_size, nslots=count,
                            load_slots=lambda: self._slots(address, names_addr, kinds_addr, count))
        nlocals = geti("co_nlocals")
        varnames = self._names(get("co_varnames"), address, nlocals)
        cells = self._names(get("co_cellvars"), address)
        frees = self._names(get("co_freevars"), address)
        names = varnames + cells + frees
        kinds = ("local",) * nlocals + ("cell",) * len(cells) + ("free",) * len(frees)
        if len(names) > MAX_SLOTS:
            raise CorruptDataError("code object 0x%x claims %d locals" % (address, len(names)))
        header = raw[self.header_start:self.header_span]
        return CodeInfo(address, name, qualname, filename, first_line, 0, names, kinds, nargs, raw_table,
                        self.decoder, header, code_size)

    def _slots(self, address: int, names_addr: int, kinds_addr: int, count: int):
        """A 3.11+ code object's slot names and kinds, read (once) when first asked for."""
        objects = self.objects
        objects.hold_heads((names_addr, kinds_addr), CODE_HEAD_PREFETCH)
        try:
            names = self._names(names_addr, address, count)
            kind_bytes = objects.bytes_value(kinds_addr, MAX_SLOTS)
        finally:
            objects.release_heads()
        if len(kind_bytes) != count:
            raise CorruptDataError("code object 0x%x: %d local kinds for %d locals"
                                   % (address, len(kind_bytes), count))
        return names, tuple(self._kind(b) for b in kind_bytes)

    def _code_size(self, address: int, raw: bytes, get) -> int:
        """Bytes of bytecode: 3.11+ code objects are var-sized (ob_size code units), older ones hold co_code."""
        if "co_code" in self.co:
            size = self.objects.bytes_size(get("co_code"))
        else:
            size = 2 * _I64.unpack_from(raw, self.layout.PyVarObject.ob_size)[0]
        if not 0 < size <= MAX_CODE_BYTES:
            raise CorruptDataError("code object 0x%x claims %d bytes of bytecode" % (address, size))
        return size

    def _names(self, tuple_addr: int, code_addr: int, expected: Optional[int] = None) -> Tuple[str, ...]:
        """A tuple of names, checked against the count the code object declares before any is read."""
        if not tuple_addr:
            items = []
        else:
            items = self.objects.sequence_items(tuple_addr, MAX_SLOTS)
        if expected is not None and len(items) != expected:
            raise CorruptDataError("code object 0x%x declares %d locals but names %d"
                                   % (code_addr, expected, len(items)))
        if len(items) < 2:
            return tuple(self.objects.string(a, 1024) for a in items)
        self.objects.hold_heads(items)
        try:
            return tuple(self.objects.string(a, 1024) for a in items)
        finally:
            self.objects.release_heads()

    def _kind(self, bits: int) -> str:
        for mask, label in self.kind_bits:
            if mask and bits & mask:
                return label
        return "local"

