"""Remote values: ints, floats, str, bytes and the items of containers.

Reading only, no rendering: the addresses and contents of what CPython keeps
in memory, bounded by the sizes each structure allows (an int by
``MAX_INT_DIGITS``, a str or bytes by its caller's cap, a container by
``MAX_ITEMS``, a dict or set table by ``MAX_TABLE``).  Formats that changed
between versions (the int header, dict key tables, split values arrays) are
picked from tables keyed by the layout's facts.
"""
from __future__ import annotations

import struct
from layouts.records import dataclass

from ..errors import CorruptDataError, MemoryReadError
from .base import MAX_INT_DIGITS, MAX_ITEMS, MAX_STR_CHARS, MAX_TABLE, TABLE_CHUNK, check_addr, entry
from .types import TypeInfo, TypeReader

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Callable, List, Optional, Sequence, Tuple


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_F64x2 = struct.Struct("<dd")


@dataclass(frozen=True)
class Keys:
    """A dict keys table, decoded enough to walk its entries."""

    entries: int
    nentries: int
    entry_size: int
    key_offset: int
    value_offset: int


class ValueReader(TypeReader):
    """Scalars and containers of a remote interpreter."""

    def __init__(self, memory, layout, budget=None):
        super().__init__(memory, layout, budget)
        facts = self.facts
        long_ = layout.PyLongObject
        self._digits_offset = long_.get("ob_digit", long_.get("long_value_ob_digit"))
        self._digit_bits = facts.ints.bits_per_digit
        self._digit_size = facts.ints.sizeof_digit
        self._digit_format = {2: "H", 4: "I"}[self._digit_size]
        self._int_header_of = _INT_HEADERS[facts.ints.header].__get__(self)
        self._keys_of = _KEY_TABLES[facts.dicts.keys].__get__(self)
        self._values_of = _VALUES_ARRAYS[facts.dicts.values].__get__(self)
        self._dict_pairs_of = _DICT_TABLES[facts.dicts.keys].__get__(self)
        strings = facts.strings
        self._str_layout_of = _STRING_MODELS[strings.model].__get__(self)
        #: Kinds read as text: the interpreter's ``str`` (2.7: bytes) and unicode.
        self._text_kinds = frozenset(("str", strings.native_str))
        self._native_bytes = strings.native_str == "bytes"
        self._unicode_char_size = strings.unicode_char_size
        bytes_struct = layout.structs.get("PyBytesObject") or layout.PyStringObject
        self._bytes_data = bytes_struct.ob_sval
        # The fast paths of ``_string`` and ``_bytes_layout``: an object of the exact builtin
        # ``str`` (compact ASCII) or ``bytes`` type whose head is already held is decoded from
        # that head in place.  Why: a one-shot dump decodes some forty code objects, each with
        # three names and two or three byte strings, and the generic path (type lookup, layout,
        # a second slice of the head) was most of their cost.  The types' addresses are learned
        # from the first object the generic path classified; anything else takes that path.
        self._exact_str = 0
        self._exact_bytes = 0
        self._ob_type = layout.PyObject.ob_type
        self._ob_size = layout.PyVarObject.ob_size
        self._pep393 = strings.model == "pep393"
        if self._pep393:
            A = layout.PyASCIIObject
            self._ascii_size, self._ascii_length, self._ascii_state = A.size, A.length, A.state
            # kind 1 (one byte per char), compact, ASCII: the characters follow the head
            compact_ascii = (1 << facts.unicode_compact_bit) | (1 << facts.unicode_ascii_bit)
            self._ascii_mask = (7 << facts.unicode_kind_shift) | compact_ascii
            self._ascii_want = (1 << facts.unicode_kind_shift) | compact_ascii

    # ------------------------------------------------------------------ scalars
    @entry
    def int_value(self, addr: int) -> int:
        """The value of a remote int (or bool, or int subclass)."""
        info = self._info_of(addr)
        if info.kind == "small_int":
            return self._small_int(addr)
        if info.kind not in ("int", "bool"):
            raise CorruptDataError("0x%x is a %s, not an int" % (addr, info.name))
        sign, ndigits = self._int_header(addr)
        if ndigits > MAX_INT_DIGITS:
            raise CorruptDataError("int at 0x%x has %d digits (cap %d)" % (addr, ndigits, MAX_INT_DIGITS))
        return self._int_from(addr, sign, ndigits)

    def _small_int(self, addr: int) -> int:
        """2.7's PyIntObject: a C long."""
        return _I64.unpack_from(self._read(addr, 24), self.layout.PyIntObject.ob_ival)[0]

    def _int_header(self, addr: int) -> Tuple[int, int]:
        """(sign, number of digits), per the version's int header (``facts.ints.header``)."""
        sign, ndigits = self._int_header_of(addr, self._read(addr, 24))
        if sign == 0:
            return 0, 0
        if ndigits == 0:
            raise CorruptDataError("int at 0x%x has a sign but no digits" % addr)
        return sign, ndigits

    def _int_header_ob_size(self, addr: int, head: bytes) -> Tuple[int, int]:
        """<= 3.11: the signed ob_size carries the sign and the digit count."""
        size = _I64.unpack_from(head, self.layout.PyVarObject.ob_size)[0]
        return (size > 0) - (size < 0), abs(size)

    def _int_header_lv_tag(self, addr: int, head: bytes) -> Tuple[int, int]:
        """3.12+: lv_tag = digit count << shift | sign bits (1 - sign; 3 is invalid)."""
        ints = self.facts.ints
        tag = _U64.unpack_from(head, self.layout.PyLongObject.lv_tag)[0]
        sign_bits = tag & ints.lv_sign_mask
        if sign_bits == ints.lv_sign_mask:
            raise CorruptDataError("int at 0x%x has an invalid lv_tag 0x%x" % (addr, tag))
        return 1 - sign_bits, tag >> ints.lv_ndigits_shift

    def _int_from(self, addr: int, sign: int, ndigits: int) -> int:
        if sign == 0:
            return 0
        bits = self._digit_bits
        # a cast, not ``array``: importing it imports ``collections``, a millisecond of every start
        digits = memoryview(self._read_in(addr, addr + self._digits_offset, self._digit_size * ndigits)
                            ).cast(self._digit_format)
        if max(digits) >> bits:
            raise CorruptDataError("int at 0x%x has a digit above 2**%d" % (addr, bits))
        value = 0
        for digit in reversed(digits):
            value = (value << bits) | digit
        return sign * value

    def _float_value(self, addr: int) -> float:
        return _F64.unpack_from(self._read(addr, self.layout.PyFloatObject.size), self.layout.PyFloatObject.ob_fval)[0]

    def _complex_value(self, addr: int) -> complex:
        C = self.layout.PyComplexObject
        real, imag = _F64x2.unpack_from(self._read(addr, C.size), C.cval)
        return complex(real, imag)

    @entry
    def is_text(self, addr: int) -> bool:
        """Is the object text ``string`` can decode: a str (or 2.7's str and unicode)?"""
        return self._info_of(addr).kind in self._text_kinds

    @entry
    def string(self, addr: int, max_len: int = MAX_STR_CHARS) -> str:
        """Decode a remote str (at most ``max_len`` characters; longer ones are returned cut, unmarked)."""
        return self._string(addr, max_len)

    @entry
    def strings(self, addrs: Sequence[int], max_len: int = MAX_STR_CHARS) -> List[Optional[str]]:
        """Many strs at once, their heads read in one batched call (None: not a readable str)."""
        self._prefetch(addrs)
        out: List[Optional[str]] = []
        for addr in addrs:
            try:
                out.append(self._string(addr, max_len))
            except (CorruptDataError, MemoryReadError, UnicodeDecodeError):
                out.append(None)
        return out

    def _string(self, addr: int, max_chars: int) -> str:
        head = self._heads.get(addr)
        if head is not None and self._exact_str and len(head) >= self._ascii_size and \
                _U64.unpack_from(head, self._ob_type)[0] == self._exact_str and \
                _U32.unpack_from(head, self._ascii_state)[0] & self._ascii_mask == self._ascii_want:
            length = _I64.unpack_from(head, self._ascii_length)[0]
            end = self._ascii_size + min(length, max_chars)
            if length >= 0 and end <= len(head):
                return head[self._ascii_size:end].decode("latin-1")
        info = self._info_of(addr)
        kind_name = info.kind
        if kind_name not in self._text_kinds:
            raise CorruptDataError("0x%x is a %s, not a str" % (addr, info.name))
        if kind_name == "str" and self._pep393 and not info.is_heap and info.name == "str":
            self._exact_str = info.addr
        if kind_name == "bytes":
            # 2.7: names, file names and namespace keys are byte strings (UTF-8 by convention).
            size, data = self._bytes_layout(addr)
            return self._read_in(addr, data, max(0, min(size, max_chars))).decode("utf-8", "replace")
        length, kind, data = self._str_layout(addr)
        count = max(0, min(length, max_chars))
        return decode_chars(self._read_in(addr, data, count * kind), kind, addr)

    def _str_layout(self, addr: int) -> Tuple[int, int, int]:
        """(length, bytes per char, address of the characters) of a str (2.7: a unicode)."""
        return self._str_layout_of(addr)

    def _str_layout_py2(self, addr: int) -> Tuple[int, int, int]:
        """2.7 unicode: ``length`` and a ``Py_UNICODE *str`` buffer (UCS4 or UCS2 by build)."""
        U = self.layout.PyUnicodeObject
        head = self._read(addr, U.size)
        length = _I64.unpack_from(head, U.length)[0]
        data = _U64.unpack_from(head, U.str)[0]
        if not 0 <= length < (1 << 40) or (length and not data):
            raise CorruptDataError("unicode at 0x%x has length %d, buffer 0x%x" % (addr, length, data))
        return length, self._unicode_char_size, data

    def _str_layout_pep393(self, addr: int) -> Tuple[int, int, int]:
        """(length, bytes per char, address of the characters) of a compact or legacy str."""
        A = self.layout.PyASCIIObject
        head = self._read(addr, A.size)
        length = _I64.unpack_from(head, A.length)[0]
        state = _U32.unpack_from(head, A.state)[0]
        f = self.facts
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

    @entry
    def bytes_value(self, addr: int, max_len: int = MAX_STR_CHARS) -> bytes:
        """The content of a remote bytes object (at most ``max_len`` bytes)."""
        size, data = self._bytes_layout(addr)
        return self._read_in(addr, data, max(0, min(size, max_len)))

    @entry
    def bytes_size(self, addr: int) -> int:
        """``len()`` of a remote bytes object, without reading its content."""
        return self._bytes_layout(addr)[0]

    def _bytes_layout(self, addr: int) -> Tuple[int, int]:
        head = self._heads.get(addr)
        if head is not None and self._exact_bytes and len(head) >= 24 and \
                _U64.unpack_from(head, self._ob_type)[0] == self._exact_bytes:
            size = _I64.unpack_from(head, self._ob_size)[0]
            if 0 <= size < (1 << 40):
                return size, addr + self._bytes_data
        info = self._info_of(addr)
        if info.kind != "bytes":
            raise CorruptDataError("0x%x is a %s, not bytes" % (addr, info.name))
        if not info.is_heap and info.name == ("str" if self._native_bytes else "bytes"):
            self._exact_bytes = info.addr
        size = _I64.unpack_from(self._read(addr, 24), self._ob_size)[0]
        if not 0 <= size < (1 << 40):
            raise CorruptDataError("bytes at 0x%x has size %d" % (addr, size))
        return size, addr + self._bytes_data

    # ------------------------------------------------------------------ containers
    @entry
    def sequence_items(self, addr: int, limit: int = MAX_ITEMS) -> List[int]:
        """Element addresses of a tuple or list (or subclass), at most ``limit`` (capped at MAX_ITEMS)."""
        return self._sequence(addr, self._info_of(addr), limit)[1]

    @entry
    def sequence_len(self, addr: int) -> int:
        """The true length of a tuple or list (or subclass), reading its head only."""
        return self._sequence(addr, self._info_of(addr), 0)[0]

    @entry
    def sequence_item(self, addr: int, index: int) -> Tuple[int, Optional[int]]:
        """(true length, address of element ``index`` or None when out of range); negative
        indices count from the end.  Not capped: ``lst[-1]`` of a 100,000-item list is its last item."""
        size, _ = self._sequence(addr, self._info_of(addr), 0)
        position = index + size if index < 0 else index
        if not 0 <= position < size:
            return size, None
        info = self._info_of(addr)
        if info.kind == "tuple":
            items = addr + self.layout.PyTupleObject.ob_item
        else:
            items = _U64.unpack_from(self._read(addr, self.layout.PyListObject.size),
                                     self.layout.PyListObject.ob_item)[0]
        return size, _U64.unpack(self._read(items + 8 * position, 8))[0]

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

    @entry
    def dict_items(self, addr: int, limit: int = MAX_ITEMS) -> List[Tuple[int, int]]:
        """(key address, value address) pairs of a dict (or subclass) in insertion order."""
        if self._info_of(addr).kind != "dict":
            raise CorruptDataError("0x%x is a %s, not a dict" % (addr, self._info_of(addr).name))
        return self._dict_pairs(addr, limit)

    def _dict_pairs(self, addr: int, limit: int) -> List[Tuple[int, int]]:
        return self._dict_pairs_of(addr, limit)

    def _dict_pairs_open_table(self, addr: int, limit: int) -> List[Tuple[int, int]]:
        """2.7: ``ma_mask + 1`` PyDictEntry slots in ``ma_table``; live ones (key and value set)
        in slot order, which is the target's own iteration order."""
        D, entry = self.layout.PyDictObject, self.layout.PyDictEntry
        key_at, value_at = entry.me_key, entry.me_value

        def live(raw: bytes, base: int) -> Optional[Tuple[int, int]]:
            key = _U64.unpack_from(raw, base + key_at)[0]
            value = _U64.unpack_from(raw, base + value_at)[0]
            # a deleted slot keeps the dummy key with a NULL value
            return (key, value) if key and value else None

        return self._open_table(addr, "dict", ("ma_used", D.ma_used), ("ma_mask", D.ma_mask), D.ma_table,
                                entry.size, limit, live)[1]

    def _dict_pairs_compact(self, addr: int, limit: int) -> List[Tuple[int, int]]:
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

    def _keys(self, keys_addr: int) -> Keys:
        """Decode a PyDictKeysObject header: where its entries are and how big each is."""
        check_addr(keys_addr, "dict keys")
        K = self.layout.PyDictKeysObject
        raw = self._read(keys_addr, K.size)
        nentries = _I64.unpack_from(raw, K.dk_nentries)[0]
        slots, index_bytes, entry_struct = self._keys_of(keys_addr, raw)
        # A table never holds more entries than it has slots (CPython resizes at 2/3 full).
        if not 0 <= nentries <= min(slots, MAX_TABLE):
            raise CorruptDataError("dict keys at 0x%x: dk_nentries %d in %d slots" % (keys_addr, nentries, slots))
        return Keys(keys_addr + K.dk_indices + index_bytes, nentries, entry_struct.size,
                    entry_struct.me_key, entry_struct.me_value)

    def _keys_dk_size(self, keys_addr: int, raw: bytes):
        """<= 3.10: dk_size slots of 1/2/4/8-byte indices, then 24-byte entries."""
        size = _I64.unpack_from(raw, self.layout.PyDictKeysObject.dk_size)[0]
        if size <= 0 or size & (size - 1) or size > MAX_TABLE * 2:
            raise CorruptDataError("dict keys at 0x%x: dk_size %d" % (keys_addr, size))
        width = 1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF else 8
        return size, size * width, self.layout.PyDictKeyEntry

    def _keys_log2(self, keys_addr: int, raw: bytes):
        """3.11+: 2**dk_log2_index_bytes bytes of indices; dk_kind 0 = general entries, else unicode."""
        K = self.layout.PyDictKeysObject
        log2_size, log2_index_bytes = raw[K.dk_log2_size], raw[K.dk_log2_index_bytes]
        # Each of the 2**log2_size indices takes 1, 2, 4 or 8 bytes.
        if log2_index_bytes > 40 or not log2_size <= log2_index_bytes <= log2_size + 3:
            raise CorruptDataError("dict keys at 0x%x: dk_log2_size %d, dk_log2_index_bytes %d"
                                   % (keys_addr, log2_size, log2_index_bytes))
        entry_struct = self.layout.PyDictKeyEntry if raw[K.dk_kind] == 0 else self.layout.PyDictUnicodeEntry
        return 1 << log2_size, 1 << log2_index_bytes, entry_struct

    def _combined_pairs(self, keys: Keys, want: int) -> List[Tuple[int, int]]:
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

    def _split_pairs(self, values_addr: int, keys: Keys) -> List[Tuple[int, int]]:
        """Pairs of a split table (shared keys, per-object values), in insertion order."""
        order, values = self._values_of(values_addr, keys)
        if any(ix >= len(values) for ix in order):
            raise CorruptDataError("values at 0x%x: order refers past the values array" % values_addr)
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

    def _values_inline_header(self, values_addr: int, keys: Keys) -> Tuple[List[int], Sequence[int]]:
        """3.13+: {capacity, size, embedded, valid} then values[capacity], then the order bytes."""
        capacity, size = self._read(values_addr, 2)
        first = self.layout.PyDictValues.values
        raw = self._read(values_addr, first + 8 * capacity + size)
        return list(raw[first + 8 * capacity:]), struct.unpack_from("<%dQ" % capacity, raw, first)

    def _values_prefix_order(self, values_addr: int, keys: Keys) -> Tuple[List[int], Sequence[int]]:
        """3.11/3.12: a prefix before values[]: ... order[1] order[0] | used | prefix size."""
        used, prefix = self._read(values_addr - 2, 2)
        if used + 2 > prefix:
            raise CorruptDataError("values at 0x%x: %d used in a %d-byte prefix" % (values_addr, used, prefix))
        order = list(reversed(self._read(values_addr - 2 - used, used))) if used else []
        count = max(order) + 1 if order else 0
        return order, struct.unpack("<%dQ" % count, self._read(values_addr, 8 * count)) if count else ()

    def _values_by_entry(self, values_addr: int, keys: Keys) -> Tuple[List[int], Sequence[int]]:
        """<= 3.10: values[i] belongs to entry i; the entries are in insertion order."""
        count = min(keys.nentries, MAX_ITEMS)
        return list(range(count)), struct.unpack("<%dQ" % count, self._read(values_addr, 8 * count)) if count else ()

    @entry
    def set_items(self, addr: int, limit: int = MAX_ITEMS) -> List[int]:
        """Element addresses of a set or frozenset (or subclass), in table (= iteration) order."""
        kind = self._info_of(addr).kind
        if kind not in ("set", "frozenset"):
            raise CorruptDataError("0x%x is a %s, not a set" % (addr, self._info_of(addr).name))
        return self._set_keys(addr, limit)[1]

    def _set_keys(self, addr: int, limit: int) -> Tuple[int, List[int]]:
        """(number of elements, first ``limit`` element addresses)."""
        S, entry = self.layout.PySetObject, self.layout.setentry
        key_at, hash_at = entry.key, entry.hash

        def live(raw: bytes, base: int) -> Optional[int]:
            key = _U64.unpack_from(raw, base + key_at)[0]
            # A deleted slot holds the dummy key with hash -1; no live key hashes to -1.
            return key if key and _I64.unpack_from(raw, base + hash_at)[0] != -1 else None

        return self._open_table(addr, "set", ("used", S.used), ("mask", S.mask), S.table, entry.size, limit, live)

    def _open_table(self, addr: int, what: str, used: Tuple[str, int], mask: Tuple[str, int], table_at: int,
                    entry_size: int, limit: int, live: Callable[[bytes, int], Any]) -> Tuple[int, List[Any]]:
        """An open-addressing table (a set's, a 2.7 dict's): its ``used`` count and what ``live``
        gives for each live slot (None: an empty or deleted one), in slot order (the target's
        iteration order), at most ``limit``; sizes are checked and the table read in chunks."""
        head = self._read(addr, table_at + 8)
        count_used = _I64.unpack_from(head, used[1])[0]
        mask_value = _I64.unpack_from(head, mask[1])[0]
        table = _U64.unpack_from(head, table_at)[0]
        slots = mask_value + 1
        if slots <= 0 or slots & mask_value or slots > MAX_TABLE or not 0 <= count_used <= slots or not table:
            raise CorruptDataError("%s at 0x%x: %s %d, %s %d" % (what, addr, used[0], count_used, mask[0], mask_value))
        want = min(count_used, limit, MAX_ITEMS)
        out: List[Any] = []
        start = 0
        while start < slots and len(out) < want:
            count = min(slots - start, TABLE_CHUNK)
            raw = self._read(table + start * entry_size, count * entry_size)
            for base in range(0, count * entry_size, entry_size):
                item = live(raw, base)
                if item is not None:
                    out.append(item)
                    if len(out) >= want:
                        break
            start += count
        return count_used, out

def decode_chars(raw: bytes, kind: int, addr: int) -> str:
    """Characters of a str from its 1-, 2- or 4-byte storage (lone surrogates kept as they are)."""
    if kind == 1:
        return raw.decode("latin-1")
    try:
        if kind == 2:
            # Each unit is one character: decoding UTF-16 would merge two lone surrogates into one.
            return "".join(map(chr, memoryview(raw).cast("H")))
        return raw.decode("utf-32-le", "surrogatepass")
    except (UnicodeDecodeError, ValueError, TypeError):
        raise CorruptDataError("str at 0x%x holds characters beyond U+10FFFF" % addr) from None


_INT_HEADERS = {"ob_size": ValueReader._int_header_ob_size, "lv_tag": ValueReader._int_header_lv_tag}
_KEY_TABLES = {"dk_size": ValueReader._keys_dk_size, "log2": ValueReader._keys_log2,
               "open_table": ValueReader._keys_dk_size}  # 2.7 has no keys object (see _DICT_TABLES)
#: facts.dicts.keys -> how a dict's (key, value) pairs are found.
_DICT_TABLES = {"dk_size": ValueReader._dict_pairs_compact, "log2": ValueReader._dict_pairs_compact,
                "open_table": ValueReader._dict_pairs_open_table}
#: facts.strings.model -> where a str's characters are.
_STRING_MODELS = {"pep393": ValueReader._str_layout_pep393, "py2": ValueReader._str_layout_py2}
_VALUES_ARRAYS = {"by_entry": ValueReader._values_by_entry, "prefix_order": ValueReader._values_prefix_order,
                  "inline_header": ValueReader._values_inline_header}
