"""Namespaces: dict lookup, instance and module attributes, type names.

Where each version keeps an instance's attributes (``facts.dicts.instance``)
is picked from a table: the dict at ``tp_dictoffset`` (<= 3.10), a values
array or dict before the object (3.11, 3.12), or values inline after
``tp_basicsize`` (3.13+).
"""
from __future__ import annotations

import struct

from ..errors import CorruptDataError, SnapshotError
from .base import MAX_CSTRING, MAX_INT_DIGITS, MAX_ITEMS, entry
from .types import TypeInfo
from .values import ValueReader

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

    Key = Union[str, int]


#: Classes of an MRO searched (a sane hierarchy is far shorter).
MAX_MRO = 256
#: PyMemberDef types holding an object pointer (T_OBJECT, T_OBJECT_EX: what ``__slots__`` creates).
_OBJECT_MEMBERS = (6, 16)
_I64 = struct.Struct("<q")


class NamespaceReader(ValueReader):
    """Dicts as namespaces: keys by value, attributes of modules, classes and instances."""

    def __init__(self, memory, layout, budget=None):
        super().__init__(memory, layout, budget)
        self._names: Dict[int, Tuple[str, Optional[str]]] = {}
        self._instance_pairs_of = _INSTANCE_STORAGE[self.facts.dicts.instance].__get__(self)

    @entry
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
            if module_addr and self._info_of(module_addr).kind in self._text_kinds:
                module = self._string(module_addr, MAX_CSTRING)
        else:
            module, dot, qualname = info.name.rpartition(".")
            if not dot:
                module = "builtins"
        self._names[info.addr] = (qualname, module)
        return qualname, module

    @entry
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
        cannot_match = self._length_mismatch(keys)
        found: Dict[Key, int] = {}
        for key_addr, value_addr in pairs:
            if cannot_match is not None and cannot_match(key_addr):
                continue
            for key in keys:
                if key not in found and self._key_equals(key_addr, key):
                    found[key] = value_addr
            if len(found) == len(keys):
                break
        return found

    def _length_mismatch(self, keys: Sequence[Key]):
        """For str keys and PEP 393 strings: a test telling from a key object's prefetched head
        alone that it equals none of ``keys`` (the word where a str keeps its length is none of
        theirs: a str of another length, or no str at all); None where no such test holds.
        Why: looking "threading" up in a target's ``sys.modules`` compared some seventy keys
        through the type and string readers, a few microseconds each."""
        if self.facts.strings.model != "pep393" or self.facts.strings.native_str != "str" \
                or not all(isinstance(key, str) for key in keys):
            return None
        lengths = {len(key) for key in keys}
        at = self.layout.PyASCIIObject.length
        end = at + 8
        heads = self._heads
        unpack = _I64.unpack_from

        def cannot_match(key_addr: int) -> bool:
            head = heads.get(key_addr)
            return head is not None and len(head) >= end and unpack(head, at)[0] not in lengths

        return cannot_match

    def _key_equals(self, key_addr: int, key: Key) -> bool:
        kind = self._info_of(key_addr).kind
        if isinstance(key, str):
            if kind not in self._text_kinds:
                return False
            if kind == "bytes":
                return self._string(key_addr, len(key) + 1) == key
            length, _, _ = self._str_layout(key_addr)
            return length == len(key) and self._string(key_addr, length) == key
        if kind == "small_int":
            return self._small_int(key_addr) == key
        if kind not in ("int", "bool"):
            return False
        sign, ndigits = self._int_header(key_addr)
        return ndigits <= MAX_INT_DIGITS and self._int_from(key_addr, sign, ndigits) == key

    @entry
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
            if self._info_of(key_addr).kind in self._text_kinds:
                out.append((self._string(key_addr, MAX_CSTRING), value_addr))
        return out

    def _instance_pairs(self, addr: int, info: Optional[TypeInfo] = None) -> List[Tuple[int, int]]:
        if info is None:
            info = self._info_of(addr)
        if info.kind == "classic_instance":
            return self._dict_or_nothing(self._ptr(addr + self.layout.PyInstanceObject.in_dict))
        if info.kind == "classic_class":
            return self._dict_or_nothing(self._ptr(addr + self.layout.PyClassObject.cl_dict))
        return self._instance_pairs_of(addr, info)

    def _instance_inline_values(self, addr: int, info: TypeInfo) -> List[Tuple[int, int]]:
        """3.13+: values inline after tp_basicsize while their ``valid`` byte is set, else the dict at obj-24."""
        flags = self.facts.type_flags
        if info.flags & flags.inline_values and info.cached_keys:
            values_addr = addr + info.basicsize
            if self._read(values_addr, 4)[3]:
                return self._split_pairs(values_addr, self._keys(info.cached_keys))
        if info.flags & flags.managed_dict:
            return self._dict_or_nothing(self._ptr(addr - 24))
        return self._instance_dictoffset(addr, info)

    def _instance_pre_header_312(self, addr: int, info: TypeInfo) -> List[Tuple[int, int]]:
        """3.12: one word at obj-24: odd means values (word + 1) with keys shared by the type, else the dict."""
        if info.flags & self.facts.type_flags.managed_dict:
            word = self._ptr(addr - 24)
            if word & 1:
                if not info.cached_keys:
                    raise CorruptDataError("object at 0x%x has values but its type has no shared keys" % addr)
                return self._split_pairs(word + 1, self._keys(info.cached_keys))
            return self._dict_or_nothing(word)
        return self._instance_dictoffset(addr, info)

    def _instance_pre_header_311(self, addr: int, info: TypeInfo) -> List[Tuple[int, int]]:
        """3.11: a values array at obj-32 (keys shared by the type), else the dict at obj-24."""
        if info.flags & self.facts.type_flags.managed_dict:
            values_addr = self._ptr(addr - 32)
            if values_addr and info.cached_keys:
                return self._split_pairs(values_addr, self._keys(info.cached_keys))
            return self._dict_or_nothing(self._ptr(addr - 24))
        return self._instance_dictoffset(addr, info)

    def _instance_dictoffset(self, addr: int, info: TypeInfo) -> List[Tuple[int, int]]:
        """<= 3.10 (and types without managed dicts later): the dict pointer at ``tp_dictoffset``."""
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

    @entry
    def getattr(self, addr: int, name: str) -> Optional[int]:
        """Attribute value address of a module, a class or an instance, without running code; None when absent.

        A module: its ``md_dict``.  A class: the ``tp_dict`` of each class
        along its ``__mro__``.  An instance: its dict, then its class's MRO,
        where a ``__slots__`` member (a member descriptor) yields the value
        in the instance's slot (None while unset) and any other class
        attribute is returned as found (a function, not a bound method; a
        property object, since its getter cannot be run).
        """
        return self._getattr(addr, name, set(), set())

    @entry
    def getattr_many(self, addrs: Sequence[int], name: str) -> Dict[int, Optional[int]]:
        """``getattr(addr, name)`` of many objects; an object whose attribute cannot be read
        maps to None.  Why not ``getattr`` in a loop: instances of one class share their key
        strings, so a key object that matched once is recognised by its address after that,
        with no read (the thread names of a dump: one key comparison, not one per thread)."""
        matched: Set[int] = set()
        other: Set[int] = set()
        out: Dict[int, Optional[int]] = {}
        # The objects' heads in one read, and what the lookups read (shared keys) kept for
        # the call: the second instance of a class costs its own values only.
        self.hold_heads(addrs)
        try:
            for addr in addrs:
                try:
                    out[addr] = self._getattr(addr, name, matched, other)
                except (SnapshotError, UnicodeDecodeError, struct.error, ValueError):
                    out[addr] = None
        finally:
            self.release_heads()
        return out

    def _getattr(self, addr: int, name: str, matched: Set[int], other: Set[int]) -> Optional[int]:
        """``getattr``; ``matched`` / ``other``: addresses of key objects known to equal ``name``
        / known not to (a key object is immutable while it is a dict's key)."""
        info = self._info_of(addr)
        if info.kind == "module":
            md_dict = self._ptr(addr + self.layout.PyModuleObject.md_dict)
            return self._dict_get(md_dict, name) if md_dict else None
        if info.kind == "type":
            return self._mro_lookup(self._type_info(addr), name)
        for key_addr, value_addr in self._instance_pairs(addr, info):
            if key_addr in matched:
                return value_addr
            if key_addr in other:
                continue
            if self._key_equals(key_addr, name):
                matched.add(key_addr)
                return value_addr
            other.add(key_addr)
        found = self._mro_lookup(info, name)
        if found is None:
            return None
        return self._through_descriptor(addr, found)

    def _mro_lookup(self, info: TypeInfo, name: str) -> Optional[int]:
        """``name`` in the ``tp_dict`` of each class of ``info``'s MRO (its own dict when it has no MRO)."""
        classes = [info.addr]
        mro_offset = self.layout.PyTypeObject.get("tp_mro")
        if mro_offset is not None:
            mro = self._ptr(info.addr + mro_offset)
            if mro and self._info_of(mro).kind == "tuple":
                classes = self._sequence(mro, self._info_of(mro), MAX_MRO)[1] or classes
        for class_addr in classes:
            tp_dict = self._type_info(class_addr).tp_dict
            if tp_dict:
                value = self._dict_get(tp_dict, name)
                if value is not None:
                    return value
        return None

    def _through_descriptor(self, addr: int, value: int) -> Optional[int]:
        """A ``__slots__`` member descriptor gives the slot's value (None: unset); anything else is itself."""
        member = self.layout.structs.get("PyMemberDescrObject")
        member_def = self.layout.structs.get("PyMemberDef")
        if member is None or member_def is None or self._info_of(value).name != "member_descriptor":
            return value
        definition = self._ptr(value + member.get("d_member"))
        raw = self._read(definition, member_def.size)
        kind = struct.unpack_from("<i", raw, member_def.get("type"))[0]
        offset = _I64.unpack_from(raw, member_def.get("offset"))[0]
        if kind not in _OBJECT_MEMBERS or not 0 < offset < (1 << 20):
            return value
        return self._ptr(addr + offset) or None


_INSTANCE_STORAGE = {
    "dictoffset": NamespaceReader._instance_dictoffset,
    "pre_header_311": NamespaceReader._instance_pre_header_311,
    "pre_header_312": NamespaceReader._instance_pre_header_312,
    "inline_values": NamespaceReader._instance_inline_values,
}
