"""Rebuilding Python values from a remote CPython's memory, without running code in it.

``ObjectReader`` turns the address of a remote object into what a debugger
user wants to see: CPython's own ``repr()`` text for builtin values, the items
of containers, instance and module attributes.  Everything is read with
``struct.unpack_from`` at offsets compiled from the version's ``Layout``; the
reader never tests version numbers, it asks ``layout.features``.

Remote memory is untrusted (the target keeps running, or the pointer we were
given is stale), so every walk is bounded: containers give at most
``MAX_ITEMS`` items, strings and bytes are read up to a length cap, ints up to
``MAX_INT_DIGITS`` digits, type chains up to ``MAX_BASES`` links, and one
public call reads at most ``MAX_TOTAL_READ`` bytes.  Anything that does not
look like what CPython would have written raises ``CorruptDataError`` (an
unreadable address is reported the same way: for an object walk, an address
that cannot be read *is* garbage).

Types are effectively immutable while alive, so everything derived from a
type (name, flags, kind, qualname) is cached by type address.  The reader
keeps per-call state (a small cache of object heads fetched in batches), so
one ``ObjectReader`` must not be shared between threads.
"""
from __future__ import annotations

import array
import struct
from dataclasses import dataclass
from functools import wraps
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar, Union

from .errors import CorruptDataError, MemoryReadError

# tp_flags bits (stable from 3.8 to 3.15)
TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_LONG_SUBCLASS = 1 << 24
TPFLAGS_LIST_SUBCLASS = 1 << 25
TPFLAGS_TUPLE_SUBCLASS = 1 << 26
TPFLAGS_BYTES_SUBCLASS = 1 << 27
TPFLAGS_UNICODE_SUBCLASS = 1 << 28
TPFLAGS_DICT_SUBCLASS = 1 << 29
TPFLAGS_TYPE_SUBCLASS = 1 << 31

#: Most items read from one container (list, tuple, dict, set, instance dict).
MAX_ITEMS = 10_000
#: Default cap on characters decoded by ``string`` and bytes by ``bytes_value``.
MAX_STR_CHARS = 1 << 20
#: Largest int read, in 30-bit digits (600 000 bits); larger ones are shown as a placeholder.
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
#: Characters (or bytes) of a long str/bytes read to choose the quote like CPython does.
QUOTE_SCAN = 4096
#: Bytes fetched per object when prefetching the heads of a container's items.
HEAD_PREFETCH = 64
#: Entries read per system call when scanning dict and set tables.
TABLE_CHUNK = 1024
#: Highest user-space address on x86-64 / aarch64 (47-48 bit address spaces).
MAX_ADDRESS = 1 << 48
#: ints with up to this many bits are converted by ``str`` directly (below the 4300-digit limit).
_STR_SAFE_BITS = 13_000

#: The marker appended when a repr is cut, and what stands for a container beyond the depth cap.
ELLIPSIS = "..."

_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_F64x2 = struct.Struct("<dd")

# Static builtin types recognised by tp_name (they have no tp_flags subclass bit).
_NAMED_KINDS = {
    "NoneType": "none", "bool": "bool", "float": "float", "complex": "complex", "set": "set",
    "frozenset": "frozenset", "function": "function", "module": "module", "cell": "cell",
}
# (flag, kind, tp_name of the builtin type that owns the kind)
_FLAG_KINDS = (
    (TPFLAGS_TYPE_SUBCLASS, "type", "type"),
    (TPFLAGS_LONG_SUBCLASS, "int", "int"),
    (TPFLAGS_LIST_SUBCLASS, "list", "list"),
    (TPFLAGS_TUPLE_SUBCLASS, "tuple", "tuple"),
    (TPFLAGS_BYTES_SUBCLASS, "bytes", "bytes"),
    (TPFLAGS_UNICODE_SUBCLASS, "str", "str"),
    (TPFLAGS_DICT_SUBCLASS, "dict", "dict"),
)
# Kinds a subclass shares with its builtin base (same memory layout).
_INHERITED_KINDS = frozenset({"int", "str", "bytes", "tuple", "list", "dict", "float", "complex",
                              "set", "frozenset", "module", "type"})
# Static singletons whose repr is a constant.
_SINGLETON_REPRS = {"NoneType": "None", "ellipsis": "Ellipsis", "NotImplementedType": "NotImplemented"}

Key = Union[str, int]
_T = TypeVar("_T")


@dataclass(frozen=True)
class TypeInfo:
    """What the reader needs to know about one remote type (cached by address)."""

    addr: int
    name: str          # tp_name
    flags: int         # tp_flags
    kind: str          # see ObjectReader.kind
    basicsize: int
    itemsize: int
    dictoffset: int
    tp_repr: int       # the type's repr slot (a C function address)
    kind_repr: int     # tp_repr of the builtin type that owns ``kind`` (object's for instance/other)
    tp_dict: int
    qualname_addr: int  # ht_qualname, heap types only
    cached_keys: int    # ht_cached_keys, heap types only

    @property
    def is_heap(self) -> bool:
        return bool(self.flags & TPFLAGS_HEAPTYPE)

    @property
    def builtin_repr(self) -> bool:
        """True when the type keeps the repr of its builtin kind, so we can reproduce it exactly."""
        return self.tp_repr == self.kind_repr


@dataclass(frozen=True)
class _Keys:
    """A dict keys table, decoded enough to walk its entries."""

    entries: int
    nentries: int
    entry_size: int
    key_offset: int
    value_offset: int


def _entry(method: Callable[..., _T]) -> Callable[..., _T]:
    """Wrap a public method: fresh per-call budget at the outermost call, MemoryReadError -> corrupt."""

    @wraps(method)
    def wrapper(self: "ObjectReader", *args, **kwargs):
        outermost = self._calls == 0
        if outermost:
            self._heads = {}
            self._bytes_read = 0
            self._visits = 0
        self._calls += 1
        try:
            return method(self, *args, **kwargs)
        except MemoryReadError as e:
            raise CorruptDataError("object memory unreadable: %s" % e) from e
        finally:
            self._calls -= 1
            if outermost:
                self._heads = {}

    return wrapper


def cut(text: str, max_len: int) -> str:
    """The rule every repr follows: longer than ``max_len`` -> first ``max_len - 3`` chars + '...'.

    The result is never longer than ``max_len`` (``max_len`` below 4 is taken as 4).
    """
    max_len = max(max_len, 4)
    if len(text) <= max_len:
        return text
    return text[:max_len - len(ELLIPSIS)] + ELLIPSIS


def _decimal(n: int, width: int = 0) -> str:
    """Decimal digits of ``n >= 0`` of any size (local ``str()`` refuses > 4300 digits)."""
    if n.bit_length() <= _STR_SAFE_BITS:
        text = str(n)
    else:
        half = int(n.bit_length() * 0.30102999566398120) // 2
        high, low = divmod(n, 10 ** half)
        text = _decimal(high) + _decimal(low, half)
    return text.zfill(width) if width else text


def _int_text(value: int, room: int) -> str:
    """``repr(value)``; for huge values only the leading digits (more than ``room``, so it gets cut)."""
    sign = "-" if value < 0 else ""
    n = -value if value < 0 else value
    if n.bit_length() > _STR_SAFE_BITS:
        estimate = int(n.bit_length() * 0.30102999566398120)  # digits are estimate or estimate+1
        if estimate > room + 1:
            return sign + _decimal(n // 10 ** (estimate - room - 1))
    return sign + _decimal(n)


def _check_addr(addr: int, what: str) -> None:
    if addr <= 0 or addr >= MAX_ADDRESS or addr & 7:
        raise CorruptDataError("implausible %s address 0x%x" % (what, addr))


class ObjectReader:
    """Reads and renders remote Python objects through a ``MemoryReader`` and a ``Layout``.

    ``repr(addr, max_len, depth)`` is CPython's ``repr()`` for builtin values
    (None, bool, int, float, complex, str, bytes, tuple, list, dict, set,
    frozenset, and subclasses of them that keep the builtin repr), for
    functions, classes, modules and cells, and ``object.__repr__`` for every
    other object (including objects whose class defines ``__repr__``: we
    cannot run it).  Known limits: str escapes follow the *local*
    interpreter's Unicode database (it only matters for characters assigned
    between the two versions' databases); ints beyond ``MAX_INT_DIGITS``
    digits show as ``<int of N bits>`` and huge ints are printed even where
    the target's 4300-digit limit would raise.
    """

    def __init__(self, memory, layout):
        self.memory = memory
        self.layout = layout
        self.features = layout.features
        self._types: Dict[int, TypeInfo] = {}
        self._names: Dict[int, Tuple[str, Optional[str]]] = {}
        self._metatypes: set = set()
        self._heads: Dict[int, bytes] = {}
        self._bytes_read = 0
        self._visits = 0
        self._calls = 0
        long_ = layout.PyLongObject
        self._digits_offset = long_.get("ob_digit", long_.get("long_value_ob_digit"))
        self._lv_tag = self.features.long_kind == "lv_tag"

    # ------------------------------------------------------------------ reading
    def _read(self, addr: int, size: int) -> bytes:
        """One bounded read, served from the prefetched object heads when they cover it."""
        head = self._heads.get(addr)
        if head is not None and len(head) >= size:
            return head[:size]
        if addr <= 0 or addr >= MAX_ADDRESS:
            raise CorruptDataError("implausible address 0x%x" % addr)
        self._bytes_read += size
        if size < 0 or self._bytes_read > MAX_TOTAL_READ:
            raise CorruptDataError("refusing to read %d more bytes at 0x%x (per-call cap reached)" % (size, addr))
        return self.memory.read(addr, size)

    def _read_in(self, obj_addr: int, addr: int, size: int) -> bytes:
        """Read part of the object at ``obj_addr`` (its prefetched head often already holds it)."""
        head = self._heads.get(obj_addr)
        start = addr - obj_addr
        if head is not None and 0 <= start and start + size <= len(head):
            return head[start:start + size]
        return self._read(addr, size)

    def _ptr(self, addr: int) -> int:
        return _U64.unpack(self._read(addr, 8))[0]

    def _prefetch(self, addrs: Iterable[int]) -> None:
        """Read the head of many objects in one batched call (missing ones are read later, singly)."""
        wanted = sorted({a for a in addrs if a not in self._heads and 0 < a < MAX_ADDRESS and not a & 7})
        if len(wanted) < 2:
            return
        self._bytes_read += HEAD_PREFETCH * len(wanted)
        if self._bytes_read > MAX_TOTAL_READ:
            return
        for addr, data in zip(wanted, self.memory.read_many([(a, HEAD_PREFETCH) for a in wanted])):
            if data is not None:
                self._heads[addr] = data

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

    # ------------------------------------------------------------------ types
    @_entry
    def type_addr(self, addr: int) -> int:
        """Address of the object's type (``ob_type``)."""
        return self._type_addr(addr)

    def _type_addr(self, addr: int) -> int:
        _check_addr(addr, "object")
        type_addr = _U64.unpack_from(self._read(addr, 16), self.layout.PyObject.ob_type)[0]
        _check_addr(type_addr, "type")
        return type_addr

    @_entry
    def type_info(self, type_addr: int) -> TypeInfo:
        """Everything cached about a type: name, flags, kind, sizes, repr slot."""
        return self._type_info(type_addr)

    def _info_of(self, addr: int) -> TypeInfo:
        return self._type_info(self._type_addr(addr))

    def _type_info(self, type_addr: int, depth: int = 0) -> TypeInfo:
        info = self._types.get(type_addr)
        if info is not None:
            return info
        if depth > MAX_BASES:
            raise CorruptDataError("type chain longer than %d at 0x%x" % (MAX_BASES, type_addr))
        _check_addr(type_addr, "type")
        T = self.layout.PyTypeObject
        raw = self._read(type_addr, T.size)
        self._check_metatype(type_addr, _U64.unpack_from(raw, self.layout.PyObject.ob_type)[0])
        flags = _U64.unpack_from(raw, T.tp_flags)[0]
        name_addr = _U64.unpack_from(raw, T.tp_name)[0]
        name = self._cstring(name_addr) if name_addr else ""
        tp_repr = _U64.unpack_from(raw, T.tp_repr)[0]
        base_addr = _U64.unpack_from(raw, T.tp_base)[0]
        base = self._type_info(base_addr, depth + 1) if base_addr else None
        kind, owns_kind = _classify(name, flags, base)
        qualname_addr = cached_keys = 0
        if flags & TPFLAGS_HEAPTYPE:
            H = self.layout.PyHeapTypeObject
            heap = self._read(type_addr + H.ht_qualname, H.ht_cached_keys + 8 - H.ht_qualname)
            qualname_addr = _U64.unpack_from(heap, 0)[0]
            cached_keys = _U64.unpack_from(heap, H.ht_cached_keys - H.ht_qualname)[0]
        info = TypeInfo(
            addr=type_addr, name=name, flags=flags, kind=kind,
            basicsize=_I64.unpack_from(raw, T.tp_basicsize)[0],
            itemsize=_I64.unpack_from(raw, T.tp_itemsize)[0],
            dictoffset=_I64.unpack_from(raw, T.tp_dictoffset)[0],
            tp_repr=tp_repr, kind_repr=tp_repr if owns_kind or base is None else base.kind_repr,
            tp_dict=_U64.unpack_from(raw, T.tp_dict)[0],
            qualname_addr=qualname_addr, cached_keys=cached_keys)
        self._types[type_addr] = info
        return info

    def _check_metatype(self, type_addr: int, meta_addr: int) -> None:
        """A type's own type must be a type (has the TYPE_SUBCLASS flag): cheap garbage filter."""
        if meta_addr in self._metatypes:
            return
        _check_addr(meta_addr, "metatype")
        flags = _U64.unpack(self._read(meta_addr + self.layout.PyTypeObject.tp_flags, 8))[0]
        if not flags & TPFLAGS_TYPE_SUBCLASS:
            raise CorruptDataError("0x%x is not a type object (its type 0x%x is no metatype)" % (type_addr, meta_addr))
        self._metatypes.add(meta_addr)

    @_entry
    def type_name(self, type_addr: int) -> str:
        """``tp_name``, as CPython prints it in messages (``'int'``, ``'collections.OrderedDict'``, ``'Inner'``)."""
        return self._type_info(type_addr).name

    @_entry
    def type_qualname_and_module(self, type_addr: int) -> Tuple[str, str]:
        """(``__qualname__``, ``__module__``) of a type; static types without a dotted name are 'builtins'."""
        qualname, module = self._qualname_module(self._type_info(type_addr))
        return qualname, module if module is not None else "builtins"

    def _qualname_module(self, info: TypeInfo) -> Tuple[str, Optional[str]]:
        """Like CPython's type_qualname/type_module; module is None when a heap type has no str ``__module__``."""
        cached = self._names.get(info.addr)
        if cached is not None:
            return cached
        if info.is_heap:
            qualname = self._string(info.qualname_addr, MAX_CSTRING) if info.qualname_addr else info.name
            module_addr = self._dict_get(info.tp_dict, "__module__") if info.tp_dict else None
            module = None
            if module_addr and self._info_of(module_addr).kind == "str":
                module = self._string(module_addr, MAX_CSTRING)
        else:
            module, dot, qualname = info.name.rpartition(".")
            if not dot:
                module = "builtins"
        self._names[info.addr] = (qualname, module)
        return qualname, module

    @_entry
    def kind(self, addr: int) -> str:
        """What an object is, by its builtin layout.

        One of 'none', 'bool', 'int', 'float', 'complex', 'str', 'bytes', 'tuple',
        'list', 'dict', 'set', 'frozenset', 'type', 'function', 'module', 'cell',
        'instance' (object of a heap type with no builtin layout) or 'other'.
        Subclasses of builtins report the builtin's kind (a dict subclass is
        'dict'), since that tells which reader applies.
        """
        return self._info_of(addr).kind

    # ------------------------------------------------------------------ scalars
    @_entry
    def int_value(self, addr: int) -> int:
        """The value of a remote int (or bool, or int subclass)."""
        info = self._info_of(addr)
        if info.kind not in ("int", "bool"):
            raise CorruptDataError("0x%x is a %s, not an int" % (addr, info.name))
        sign, ndigits = self._int_header(addr)
        if ndigits > MAX_INT_DIGITS:
            raise CorruptDataError("int at 0x%x has %d digits (cap %d)" % (addr, ndigits, MAX_INT_DIGITS))
        return self._int_from(addr, sign, ndigits)

    def _int_header(self, addr: int) -> Tuple[int, int]:
        """(sign, number of 30-bit digits) from ob_size (<= 3.11) or lv_tag (3.12+)."""
        word = self._read(addr, 24)
        if self._lv_tag:
            tag = _U64.unpack_from(word, self.layout.PyLongObject.lv_tag)[0]
            if tag & 3 == 3:
                raise CorruptDataError("int at 0x%x has an invalid lv_tag 0x%x" % (addr, tag))
            sign, ndigits = 1 - (tag & 3), tag >> 3
        else:
            size = _I64.unpack_from(word, self.layout.PyVarObject.ob_size)[0]
            sign, ndigits = (size > 0) - (size < 0), abs(size)
        if sign == 0:
            return 0, 0
        if ndigits == 0:
            raise CorruptDataError("int at 0x%x has a sign but no digits" % addr)
        return sign, ndigits

    def _int_from(self, addr: int, sign: int, ndigits: int) -> int:
        if sign == 0:
            return 0
        digits = array.array("I", self._read_in(addr, addr + self._digits_offset, 4 * ndigits))
        if max(digits) >> 30:
            raise CorruptDataError("int at 0x%x has a digit above 2**30" % addr)
        value = 0
        for digit in reversed(digits):
            value = (value << 30) | digit
        return sign * value

    def _float_value(self, addr: int) -> float:
        return _F64.unpack_from(self._read(addr, self.layout.PyFloatObject.size), self.layout.PyFloatObject.ob_fval)[0]

    def _complex_value(self, addr: int) -> complex:
        C = self.layout.PyComplexObject
        real, imag = _F64x2.unpack_from(self._read(addr, C.size), C.cval)
        return complex(real, imag)

    @_entry
    def string(self, addr: int, max_len: int = MAX_STR_CHARS) -> str:
        """Decode a remote str (at most ``max_len`` characters; longer ones are returned cut, unmarked)."""
        return self._string(addr, max_len)

    def _string(self, addr: int, max_chars: int) -> str:
        if self._info_of(addr).kind != "str":
            raise CorruptDataError("0x%x is a %s, not a str" % (addr, self._info_of(addr).name))
        length, kind, data = self._str_layout(addr)
        count = max(0, min(length, max_chars))
        return _decode(self._read_in(addr, data, count * kind), kind, addr)

    def _str_layout(self, addr: int) -> Tuple[int, int, int]:
        """(length, bytes per char, address of the characters) of a compact or legacy str."""
        A = self.layout.PyASCIIObject
        head = self._read(addr, A.size)
        length = _I64.unpack_from(head, A.length)[0]
        state = _U32.unpack_from(head, A.state)[0]
        f = self.features
        kind = (state >> f.unicode_kind_shift) & 7
        compact = (state >> f.unicode_compact_bit) & 1
        ascii_ = (state >> f.unicode_ascii_bit) & 1
        if kind not in (1, 2, 4) or (ascii_ and kind != 1) or not 0 <= length < (1 << 40):
            raise CorruptDataError("str at 0x%x has state 0x%x, length %d" % (addr, state, length))
        if compact:
            data = addr + (A.size if ascii_ else self.layout.PyCompactUnicodeObject.size)
        else:
            data = self._ptr(addr + self.layout.PyUnicodeObject.data)
            if not data and length:
                raise CorruptDataError("legacy str at 0x%x has no data" % addr)
        return length, kind, data

    @_entry
    def bytes_value(self, addr: int, max_len: int = MAX_STR_CHARS) -> bytes:
        """The content of a remote bytes object (at most ``max_len`` bytes)."""
        size, data = self._bytes_layout(addr)
        return self._read_in(addr, data, max(0, min(size, max_len)))

    def _bytes_layout(self, addr: int) -> Tuple[int, int]:
        if self._info_of(addr).kind != "bytes":
            raise CorruptDataError("0x%x is a %s, not bytes" % (addr, self._info_of(addr).name))
        size = _I64.unpack_from(self._read(addr, 24), self.layout.PyVarObject.ob_size)[0]
        if not 0 <= size < (1 << 40):
            raise CorruptDataError("bytes at 0x%x has size %d" % (addr, size))
        return size, addr + self.layout.PyBytesObject.ob_sval

    # ------------------------------------------------------------------ containers
    @_entry
    def sequence_items(self, addr: int, limit: int = MAX_ITEMS) -> List[int]:
        """Element addresses of a tuple or list (or subclass), at most ``limit`` (capped at MAX_ITEMS)."""
        return self._sequence(addr, self._info_of(addr), limit)[1]

    def _sequence(self, addr: int, info: TypeInfo, limit: int) -> Tuple[int, List[int]]:
        """(true length, first ``limit`` element addresses)."""
        head = self._read(addr, self.layout.PyListObject.size)
        size = _I64.unpack_from(head, self.layout.PyVarObject.ob_size)[0]
        if info.kind == "tuple":
            items = addr + self.layout.PyTupleObject.ob_item
        elif info.kind == "list":
            items = _U64.unpack_from(head, self.layout.PyListObject.ob_item)[0]
            allocated = _I64.unpack_from(head, self.layout.PyListObject.allocated)[0]
            if size > allocated or (size and not items):
                raise CorruptDataError("list at 0x%x: size %d, allocated %d" % (addr, size, allocated))
        else:
            raise CorruptDataError("0x%x is a %s, not a tuple or list" % (addr, info.name))
        if not 0 <= size < (1 << 40):
            raise CorruptDataError("%s at 0x%x has size %d" % (info.kind, addr, size))
        count = max(0, min(size, limit, MAX_ITEMS))
        if not count:
            return size, []
        raw = self._read(items, 8 * count)
        return size, list(struct.unpack("<%dQ" % count, raw))

    @_entry
    def dict_items(self, addr: int, limit: int = MAX_ITEMS) -> List[Tuple[int, int]]:
        """(key address, value address) pairs of a dict (or subclass) in insertion order."""
        if self._info_of(addr).kind != "dict":
            raise CorruptDataError("0x%x is a %s, not a dict" % (addr, self._info_of(addr).name))
        return self._dict_pairs(addr, limit)

    def _dict_pairs(self, addr: int, limit: int) -> List[Tuple[int, int]]:
        D = self.layout.PyDictObject
        head = self._read(addr, D.size)
        used = _I64.unpack_from(head, D.ma_used)[0]
        keys_addr = _U64.unpack_from(head, D.ma_keys)[0]
        values_addr = _U64.unpack_from(head, D.ma_values)[0]
        if not 0 <= used < MAX_TABLE or not keys_addr:
            raise CorruptDataError("dict at 0x%x: ma_used %d, ma_keys 0x%x" % (addr, used, keys_addr))
        want = min(used, limit, MAX_ITEMS)
        if want <= 0:
            return []
        keys = self._keys(keys_addr)
        if values_addr:
            return self._split_pairs(values_addr, keys)[:want]
        return self._combined_pairs(keys, want)

    def _keys(self, keys_addr: int) -> _Keys:
        """Decode a PyDictKeysObject header: where its entries are and how big each is."""
        _check_addr(keys_addr, "dict keys")
        K = self.layout.PyDictKeysObject
        raw = self._read(keys_addr, K.size)
        nentries = _I64.unpack_from(raw, K.dk_nentries)[0]
        if self.features.dict_keys_kind == "dk_size":
            size = _I64.unpack_from(raw, K.dk_size)[0]
            if size <= 0 or size & (size - 1) or size > MAX_TABLE * 2:
                raise CorruptDataError("dict keys at 0x%x: dk_size %d" % (keys_addr, size))
            index_bytes = size * (1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF else 8)
            entry = self.layout.PyDictKeyEntry
        else:
            log2_index_bytes = raw[K.dk_log2_index_bytes]
            if log2_index_bytes > 40:
                raise CorruptDataError("dict keys at 0x%x: dk_log2_index_bytes %d" % (keys_addr, log2_index_bytes))
            index_bytes = 1 << log2_index_bytes
            entry = self.layout.PyDictKeyEntry if raw[K.dk_kind] == 0 else self.layout.PyDictUnicodeEntry
        if not 0 <= nentries <= MAX_TABLE:
            raise CorruptDataError("dict keys at 0x%x: dk_nentries %d" % (keys_addr, nentries))
        return _Keys(keys_addr + K.dk_indices + index_bytes, nentries, entry.size, entry.me_key, entry.me_value)

    def _combined_pairs(self, keys: _Keys, want: int) -> List[Tuple[int, int]]:
        """Live entries of a combined table, in entry (= insertion) order."""
        out: List[Tuple[int, int]] = []
        start = 0
        while start < keys.nentries and len(out) < want:
            count = min(keys.nentries - start, TABLE_CHUNK)
            raw = self._read(keys.entries + start * keys.entry_size, count * keys.entry_size)
            for base in range(0, count * keys.entry_size, keys.entry_size):
                key = _U64.unpack_from(raw, base + keys.key_offset)[0]
                value = _U64.unpack_from(raw, base + keys.value_offset)[0]
                if key and value:
                    out.append((key, value))
                    if len(out) >= want:
                        break
            start += count
        return out

    def _split_pairs(self, values_addr: int, keys: _Keys) -> List[Tuple[int, int]]:
        """Pairs of a split table (shared keys, per-object values), in insertion order."""
        order, values = self._split_values(values_addr, keys)
        if not order:
            return []
        top = max(order)
        if top >= keys.nentries:
            raise CorruptDataError("split values at 0x%x use slot %d of %d keys" % (values_addr, top, keys.nentries))
        raw = self._read(keys.entries, (top + 1) * keys.entry_size)
        out = []
        for ix in order:
            value = values[ix]
            key = _U64.unpack_from(raw, ix * keys.entry_size + keys.key_offset)[0]
            if key and value:
                out.append((key, value))
        return out

    def _split_values(self, values_addr: int, keys: _Keys) -> Tuple[List[int], Sequence[int]]:
        """(slot order, value pointers by slot) of a values array, per the version's format."""
        style = self.features.instance_dict
        if style == "inline_values":
            # 3.13+: {capacity, size, embedded, valid} then values[capacity], then the order bytes.
            capacity, size = self._read(values_addr, 2)
            first = self.layout.PyDictValues.values
            raw = self._read(values_addr, first + 8 * capacity + size)
            values = struct.unpack_from("<%dQ" % capacity, raw, first)
            order = list(raw[first + 8 * capacity:])
        elif style in ("pre_header_311", "pre_header_312"):
            # 3.11/3.12: a prefix before values[]: ... order[1] order[0] | used | prefix size.
            used, prefix = self._read(values_addr - 2, 2)
            if used + 2 > prefix:
                raise CorruptDataError("values at 0x%x: %d used in a %d-byte prefix" % (values_addr, used, prefix))
            order = list(reversed(self._read(values_addr - 2 - used, used))) if used else []
            count = max(order) + 1 if order else 0
            values = struct.unpack("<%dQ" % count, self._read(values_addr, 8 * count)) if count else ()
        else:
            # <= 3.10: values[i] belongs to entry i; the entries are in insertion order.
            count = min(keys.nentries, MAX_ITEMS)
            order = list(range(count))
            values = struct.unpack("<%dQ" % count, self._read(values_addr, 8 * count)) if count else ()
        if any(ix >= len(values) for ix in order):
            raise CorruptDataError("values at 0x%x: order refers past the values array" % values_addr)
        return order, values

    @_entry
    def set_items(self, addr: int, limit: int = MAX_ITEMS) -> List[int]:
        """Element addresses of a set or frozenset (or subclass), in table (= iteration) order."""
        kind = self._info_of(addr).kind
        if kind not in ("set", "frozenset"):
            raise CorruptDataError("0x%x is a %s, not a set" % (addr, self._info_of(addr).name))
        return self._set_keys(addr, limit)[1]

    def _set_keys(self, addr: int, limit: int) -> Tuple[int, List[int]]:
        """(number of elements, first ``limit`` element addresses)."""
        S = self.layout.PySetObject
        head = self._read(addr, S.table + 8)
        used = _I64.unpack_from(head, S.used)[0]
        mask = _I64.unpack_from(head, S.mask)[0]
        table = _U64.unpack_from(head, S.table)[0]
        slots = mask + 1
        if slots <= 0 or slots & mask or slots > MAX_TABLE or not 0 <= used <= slots or not table:
            raise CorruptDataError("set at 0x%x: used %d, mask %d" % (addr, used, mask))
        want = min(used, limit, MAX_ITEMS)
        entry = self.layout.setentry
        out: List[int] = []
        start = 0
        while start < slots and len(out) < want:
            count = min(slots - start, TABLE_CHUNK)
            raw = self._read(table + start * entry.size, count * entry.size)
            for base in range(0, count * entry.size, entry.size):
                key = _U64.unpack_from(raw, base + entry.key)[0]
                # A deleted slot holds the dummy key with hash -1; no live key hashes to -1.
                if key and _I64.unpack_from(raw, base + entry.hash)[0] != -1:
                    out.append(key)
                    if len(out) >= want:
                        break
            start += count
        return used, out

    @_entry
    def dict_get(self, addr: int, key: Key) -> Optional[int]:
        """Value address for a str or int key of a dict (linear scan of at most MAX_ITEMS items), or None."""
        return self._dict_get(addr, key)

    def _dict_get(self, addr: int, key: Key) -> Optional[int]:
        return self._dict_find(addr, (key,)).get(key)

    def _dict_find(self, addr: int, keys: Sequence[Key]) -> Dict[Key, int]:
        """Values of several keys in one scan of the dict (module reprs need four)."""
        if self._info_of(addr).kind != "dict":
            raise CorruptDataError("0x%x is a %s, not a dict" % (addr, self._info_of(addr).name))
        pairs = self._dict_pairs(addr, MAX_ITEMS)
        self._prefetch(k for k, _ in pairs)
        found: Dict[Key, int] = {}
        for key_addr, value_addr in pairs:
            for key in keys:
                if key not in found and self._key_equals(key_addr, key):
                    found[key] = value_addr
            if len(found) == len(keys):
                break
        return found

    def _key_equals(self, key_addr: int, key: Key) -> bool:
        kind = self._info_of(key_addr).kind
        if isinstance(key, str):
            if kind != "str":
                return False
            length, _, _ = self._str_layout(key_addr)
            return length == len(key) and self._string(key_addr, length) == key
        if kind not in ("int", "bool"):
            return False
        sign, ndigits = self._int_header(key_addr)
        return ndigits <= MAX_INT_DIGITS and self._int_from(key_addr, sign, ndigits) == key

    # ------------------------------------------------------------------ attributes
    @_entry
    def instance_dict_items(self, addr: int) -> List[Tuple[str, int]]:
        """An instance's ``__dict__`` as (name, value address), wherever this version keeps it.

        <= 3.10: the dict at ``tp_dictoffset``.  3.11: a values array at obj-32
        (keys shared in ``ht_cached_keys``) or a dict at obj-24.  3.12: one
        word at obj-24, a dict or (odd) a tagged values pointer.  3.13+: inline
        values after ``tp_basicsize`` while valid, else the dict at obj-24.
        Non-str keys (possible via ``__dict__`` tricks) are skipped.
        """
        out = []
        for key_addr, value_addr in self._instance_pairs(addr):
            if self._info_of(key_addr).kind == "str":
                out.append((self._string(key_addr, MAX_CSTRING), value_addr))
        return out

    def _instance_pairs(self, addr: int) -> List[Tuple[int, int]]:
        info = self._info_of(addr)
        style = self.features.instance_dict
        if style == "inline_values" and info.flags & self.features.tpflags_inline_values:
            values_addr = addr + info.basicsize
            if self._read(values_addr, 4)[3] and info.cached_keys:  # the `valid` byte
                return self._split_pairs(values_addr, self._keys(info.cached_keys))
        if info.flags & self.features.tpflags_managed_dict:
            if style == "pre_header_311":
                values_addr = self._ptr(addr - 32)
                if values_addr and info.cached_keys:
                    return self._split_pairs(values_addr, self._keys(info.cached_keys))
            word = self._ptr(addr - 24)
            if style == "pre_header_312" and word & 1:
                if not info.cached_keys:
                    raise CorruptDataError("object at 0x%x has values but its type has no shared keys" % addr)
                return self._split_pairs(word + 1, self._keys(info.cached_keys))
            return self._dict_or_nothing(word)
        return self._dict_or_nothing(self._dictoffset_dict(addr, info))

    def _dictoffset_dict(self, addr: int, info: TypeInfo) -> int:
        """The dict pointer at ``tp_dictoffset`` (negative: counted from the end of a var-sized object)."""
        offset = info.dictoffset
        if offset == 0:
            return 0
        if offset < 0:
            size = abs(_I64.unpack_from(self._read(addr, 24), self.layout.PyVarObject.ob_size)[0])
            if size >= (1 << 40):
                raise CorruptDataError("object at 0x%x has ob_size %d" % (addr, size))
            offset += (info.basicsize + size * info.itemsize + 7) & ~7
        return self._ptr(addr + offset)

    def _dict_or_nothing(self, dict_addr: int) -> List[Tuple[int, int]]:
        if not dict_addr:
            return []
        if self._info_of(dict_addr).kind != "dict":
            raise CorruptDataError("instance dict pointer 0x%x is a %s" % (dict_addr, self._info_of(dict_addr).name))
        return self._dict_pairs(dict_addr, MAX_ITEMS)

    @_entry
    def getattr(self, addr: int, name: str) -> Optional[int]:
        """Attribute value address from a module's ``md_dict``, a class's ``tp_dict`` or an instance dict.

        Only attributes stored in a dict are found (not ``__slots__`` members,
        properties or class attributes seen through an instance); None when absent.
        """
        info = self._info_of(addr)
        if info.kind == "module":
            md_dict = self._ptr(addr + self.layout.PyModuleObject.md_dict)
            return self._dict_get(md_dict, name) if md_dict else None
        if info.kind == "type":
            tp_dict = self._type_info(addr).tp_dict
            return self._dict_get(tp_dict, name) if tp_dict else None
        for key_addr, value_addr in self._instance_pairs(addr):
            if self._key_equals(key_addr, name):
                return value_addr
        return None

    # ------------------------------------------------------------------ repr
    @_entry
    def repr(self, addr: int, max_len: int = 1024, depth: int = 6) -> str:
        """CPython's ``repr()`` of the object, cut to ``max_len`` characters.

        Cutting: a text longer than ``max_len`` becomes its first
        ``max_len - 3`` characters followed by ``...`` (so the result is at
        most ``max_len`` long; ``max_len`` below 4 counts as 4).  Only what
        fits is read: long containers stop early, long str/bytes are read up
        to ``max(max_len, QUOTE_SCAN)`` characters (the quote character is
        chosen from that prefix, exactly like CPython when the value is no
        longer than that).

        Depth: containers (tuple, list, dict, set, frozenset) nested more
        than ``depth`` levels deep show as ``...`` in place of their repr,
        e.g. ``repr([1, [2, [3]]], depth=2) == '[1, [2, ...]]'``; scalars are
        always shown.  CPython never writes a bare ``...`` inside a container
        (recursion is ``[...]``, ``{...}``), so the two cannot be confused.
        A container holding more than ``MAX_ITEMS`` items ends in ``, ...``.
        """
        max_len = max(max_len, 4)
        return cut(self._repr(addr, depth, max_len), max_len)

    def _repr(self, addr: int, depth: int, room: int, active: Optional[set] = None) -> str:
        """Render one object; a text longer than ``room`` may be incomplete (the caller cuts it)."""
        self._visits += 1
        if self._visits > MAX_VISITS:
            return ELLIPSIS
        if addr == 0:
            return "<NULL>"
        info = self._info_of(addr)
        if not info.is_heap and info.name in _SINGLETON_REPRS:
            return _SINGLETON_REPRS[info.name]
        if not info.builtin_repr:
            return self._default_repr(addr, info)
        render = _RENDERERS.get(info.kind)
        if render is None:
            return self._default_repr(addr, info)
        if info.kind in _CONTAINERS:
            if depth <= 0:
                return ELLIPSIS
            active = set() if active is None else active
            if addr in active:
                return _recursion_marker(info)
            active.add(addr)
            try:
                return render(self, addr, info, depth, room, active)
            finally:
                active.discard(addr)
        return render(self, addr, info, depth, room, active)

    def _default_repr(self, addr: int, info: TypeInfo) -> str:
        """``object.__repr__``: ``<module.Qualname object at 0x...>``, module left out for builtins."""
        qualname, module = self._qualname_module(info)
        if module is not None and module != "builtins":
            return "<%s.%s object at 0x%x>" % (module, qualname, addr)
        return "<%s object at 0x%x>" % (info.name, addr)

    def _render_bool(self, addr, info, depth, room, active) -> str:
        sign, _ = self._int_header(addr)
        return "True" if sign else "False"

    def _render_int(self, addr, info, depth, room, active) -> str:
        sign, ndigits = self._int_header(addr)
        if ndigits > MAX_INT_DIGITS:
            return "<int of about %d bits>" % (30 * ndigits)
        return _int_text(self._int_from(addr, sign, ndigits), room)

    def _render_float(self, addr, info, depth, room, active) -> str:
        return repr(self._float_value(addr))

    def _render_complex(self, addr, info, depth, room, active) -> str:
        return repr(self._complex_value(addr))

    def _render_str(self, addr, info, depth, room, active) -> str:
        length, kind, data = self._str_layout(addr)
        count = min(length, max(room, QUOTE_SCAN))
        text = repr(_decode(self._read_in(addr, data, count * kind), kind, addr))
        return text if count == length else text[:-1]  # no closing quote: the value goes on

    def _render_bytes(self, addr, info, depth, room, active) -> str:
        size, data = self._bytes_layout(addr)
        count = min(size, max(room, QUOTE_SCAN))
        text = repr(self._read_in(addr, data, count))
        return text if count == size else text[:-1]

    def _render_tuple(self, addr, info, depth, room, active) -> str:
        size, items = self._sequence(addr, info, _items_for(room))
        if size == 0:
            return "()"
        body = self._join(items, size, depth, room - 2, active)
        return "(" + body + ("," if size == 1 else "") + ")"

    def _render_list(self, addr, info, depth, room, active) -> str:
        size, items = self._sequence(addr, info, _items_for(room))
        if size == 0:
            return "[]"
        return "[" + self._join(items, size, depth, room - 2, active) + "]"

    def _render_dict(self, addr, info, depth, room, active) -> str:
        pairs = self._dict_pairs(addr, _items_for(room))
        if not pairs:
            return "{}"
        used = _I64.unpack_from(self._read(addr, 24), self.layout.PyDictObject.ma_used)[0]
        self._prefetch(a for pair in pairs for a in pair)
        parts: List[str] = []
        length = 1
        for key_addr, value_addr in pairs:
            if length > room:
                break
            key = self._repr(key_addr, depth - 1, room - length, active)
            value = self._repr(value_addr, depth - 1, room - length - len(key) - 2, active)
            parts.append(key + ": " + value)
            length += len(parts[-1]) + 2
        if len(parts) < used:
            parts.append(ELLIPSIS)
        return "{" + ", ".join(parts) + "}"

    def _render_set(self, addr, info, depth, room, active) -> str:
        size, items = self._set_keys(addr, _items_for(room))
        exact_set = info.kind == "set" and not info.is_heap
        if size == 0:
            return "%s()" % info.name
        body = "{" + self._join(items, size, depth, room - len(info.name) - 4, active) + "}"
        return body if exact_set else "%s(%s)" % (info.name, body)

    def _join(self, items: List[int], size: int, depth: int, room: int, active: set) -> str:
        """Render items joined by ', ', stopping once past ``room``; ', ...' ends it if items were left out.

        The marker also guarantees that a text stopped for lack of room is longer
        than ``room``, so the final cut (and its marker) always happens.
        """
        self._prefetch(items)
        parts: List[str] = []
        length = 0
        for item in items:
            if length > room:
                break
            parts.append(self._repr(item, depth - 1, room - length, active))
            length += len(parts[-1]) + 2
        if len(parts) < size:
            parts.append(ELLIPSIS)
        return ", ".join(parts)

    def _render_type(self, addr, info, depth, room, active) -> str:
        """type.__repr__: ``<class 'mod.Qualname'>``, or ``<class 'tp_name'>`` for builtins."""
        target = self._type_info(addr)
        if not target.name:
            return "<class at 0x%x>" % addr
        qualname, module = self._qualname_module(target)
        if module is not None and module != "builtins":
            return "<class '%s.%s'>" % (module, qualname)
        return "<class '%s'>" % target.name

    def _render_function(self, addr, info, depth, room, active) -> str:
        qualname = self._ptr(addr + self.layout.PyFunctionObject.func_qualname)
        return "<function %s at 0x%x>" % (self._string(qualname, MAX_CSTRING), addr)

    def _render_cell(self, addr, info, depth, room, active) -> str:
        ref = self._ptr(addr + self.layout.PyCellObject.ob_ref)
        if not ref:
            return "<cell at 0x%x: empty>" % addr
        return "<cell at 0x%x: %.80s object at 0x%x>" % (addr, self._info_of(ref).name, ref)

    def _render_module(self, addr, info, depth, room, active) -> str:
        """importlib's module repr: from ``__spec__`` when set, else ``__name__`` and ``__file__``."""
        md_dict = self._ptr(addr + self.layout.PyModuleObject.md_dict)
        if not md_dict:
            return "<module '?'>"
        found = self._dict_find(md_dict, ("__name__", "__loader__", "__spec__", "__file__"))
        name = self._str_attr(found.get("__name__"), "?")
        loader = found.get("__loader__")
        special = self._importer_repr(name, loader)
        if special is not None:
            return special
        spec = found.get("__spec__")
        if spec and self._info_of(spec).kind != "none":
            return self._module_repr_from_spec(spec, depth, room)
        filename = found.get("__file__")
        if filename and self._info_of(filename).kind == "str":
            return "<module %r from %r>" % (name, self._string(filename, MAX_STR_CHARS))
        if not loader or self._info_of(loader).kind == "none":
            return "<module %r>" % name
        return "<module %r (%s)>" % (name, self._loader_repr(loader, depth, room))

    def _loader_repr(self, loader: int, depth: int, room: int) -> str:
        """A loader inside a module repr; depth-limited since a loader could lead back to a module."""
        return self._repr(loader, depth - 1, room) if depth > 0 else ELLIPSIS

    def _importer_repr(self, name: str, loader: Optional[int]) -> Optional[str]:
        """Up to 3.11 importlib asks ``__loader__.module_repr`` first: built-in and frozen modules.

        3.12+ gives the same text from the spec (origin 'built-in' / 'frozen').
        """
        if not loader or self._info_of(loader).kind != "type":
            return None
        qualname, module = self._qualname_module(self._type_info(loader))
        label = _IMPORTER_LABELS.get(qualname) if module == "_frozen_importlib" else None
        return None if label is None else "<module %r (%s)>" % (name, label)

    def _module_repr_from_spec(self, spec: int, depth: int, room: int) -> str:
        attrs = dict(self.instance_dict_items(spec))
        name = self._str_attr(attrs.get("name"), "?")
        origin = attrs.get("origin")
        if not origin or self._info_of(origin).kind == "none":
            loader = attrs.get("loader")
            if not loader or self._info_of(loader).kind == "none":
                return "<module %r>" % name
            return "<module %r (%s)>" % (name, self._loader_repr(loader, depth, room))
        origin_text = self._str_attr(origin, "?")
        has_location = attrs.get("_set_fileattr")
        if has_location and self._info_of(has_location).kind == "bool" and self._int_header(has_location)[0]:
            return "<module %r from %r>" % (name, origin_text)
        return "<module %r (%r)>" % (name, origin_text)

    def _str_attr(self, addr: Optional[int], default: str) -> str:
        if addr and self._info_of(addr).kind == "str":
            return self._string(addr, MAX_STR_CHARS)
        return default


def _classify(name: str, flags: int, base: Optional[TypeInfo]) -> Tuple[str, bool]:
    """(kind, whether this type is the builtin that owns the kind) for a type being cached."""
    heap = bool(flags & TPFLAGS_HEAPTYPE)
    if not heap and name in _NAMED_KINDS:
        return _NAMED_KINDS[name], True
    for flag, kind, owner in _FLAG_KINDS:
        if flags & flag:
            return kind, not heap and name == owner
    if base is not None and base.kind in _INHERITED_KINDS:
        return base.kind, False
    return ("instance" if heap else "other"), base is None


def _decode(raw: bytes, kind: int, addr: int) -> str:
    """Characters of a str from its 1-, 2- or 4-byte storage (lone surrogates kept as they are)."""
    if kind == 1:
        return raw.decode("latin-1")
    try:
        if kind == 2:
            # Widen first: decoding UTF-16 would merge two lone surrogates into one character.
            raw = array.array("I", array.array("H", raw)).tobytes()
        return raw.decode("utf-32-le", "surrogatepass")
    except (UnicodeDecodeError, ValueError):
        raise CorruptDataError("str at 0x%x holds characters beyond U+10FFFF" % addr) from None


def _items_for(room: int) -> int:
    """Items worth reading to fill ``room`` characters (each item takes at least 3 with ', ')."""
    return min(MAX_ITEMS, max(1, room // 3 + 2))


def _recursion_marker(info: TypeInfo) -> str:
    """What CPython's Py_ReprEnter guard prints for a container already being rendered."""
    if info.kind == "list":
        return "[...]"
    if info.kind == "tuple":
        return "(...)"
    if info.kind == "dict":
        return "{...}"
    return "%s(...)" % info.name


_IMPORTER_LABELS = {"BuiltinImporter": "built-in", "FrozenImporter": "frozen"}
_CONTAINERS = frozenset({"tuple", "list", "dict", "set", "frozenset"})
_RENDERERS: Dict[str, Callable[..., str]] = {
    "bool": ObjectReader._render_bool,
    "int": ObjectReader._render_int,
    "float": ObjectReader._render_float,
    "complex": ObjectReader._render_complex,
    "str": ObjectReader._render_str,
    "bytes": ObjectReader._render_bytes,
    "tuple": ObjectReader._render_tuple,
    "list": ObjectReader._render_list,
    "dict": ObjectReader._render_dict,
    "set": ObjectReader._render_set,
    "frozenset": ObjectReader._render_set,
    "type": ObjectReader._render_type,
    "function": ObjectReader._render_function,
    "cell": ObjectReader._render_cell,
    "module": ObjectReader._render_module,
}

__all__ = ["ObjectReader", "TypeInfo", "cut", "MAX_ITEMS", "ELLIPSIS"]
