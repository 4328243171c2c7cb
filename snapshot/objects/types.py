"""Remote types: what a type is (its kind), read once and cached by address.

Types are effectively immutable while alive, so everything derived from a
type (name, flags, kind, sizes, repr slot) is cached by type address.  The
``tp_flags`` bits come from the layout's facts (``layout.facts.type_flags``).
"""
from __future__ import annotations

import struct
from layouts.records import dataclass

from ..errors import CorruptDataError
from .base import MAX_BASES, RemoteReader, check_addr, entry

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Optional, Tuple


_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")

# Static builtin types recognised by tp_name (they have no tp_flags subclass bit).
_NAMED_KINDS = {
    "NoneType": "none", "bool": "bool", "float": "float", "complex": "complex", "set": "set",
    "frozenset": "frozenset", "function": "function", "module": "module", "cell": "cell",
}
# (TypeFlags field, kind, tp_name of the builtin type that owns the kind)
_FLAG_KINDS = (
    ("type_subclass", "type", "type"),
    ("long_subclass", "int", "int"),
    ("list_subclass", "list", "list"),
    ("tuple_subclass", "tuple", "tuple"),
    ("bytes_subclass", "bytes", "bytes"),
    ("unicode_subclass", "str", "str"),
    ("dict_subclass", "dict", "dict"),
)
# 2.7: PyIntObject (beside long, which is kind "int"), owned by the static type "int".
_SMALL_INT_KIND = ("int_subclass", "small_int", "int")
# 2.7's classic classes and instances (static types named "classobj" and "instance").
_CLASSIC_KINDS = {"classobj": "classic_class", "instance": "classic_instance"}
#: facts.reprs -> tp_name of the builtin type owning each flag kind, where it is not the kind's name
#: (2.7: long is kind "int", str is kind "bytes", unicode is kind "str").
_OWNER_NAMES = {"py3": {}, "py2": {"int": "long", "bytes": "str", "str": "unicode"}}
# Kinds a subclass shares with its builtin base (same memory layout).
_INHERITED_KINDS = frozenset({"int", "str", "bytes", "tuple", "list", "dict", "float", "complex",
                              "set", "frozenset", "module", "type", "small_int"})


@dataclass(frozen=True)
class TypeInfo:
    """What the reader needs to know about one remote type (cached by address)."""

    addr: int
    name: str          # tp_name
    flags: int         # tp_flags
    kind: str          # see TypeReader.kind
    basicsize: int
    itemsize: int
    dictoffset: int
    tp_repr: int       # the type's repr slot (a C function address)
    kind_repr: int     # tp_repr of the builtin type that owns ``kind`` (object's for instance/other)
    tp_dict: int
    qualname_addr: int  # ht_qualname, heap types only
    cached_keys: int    # ht_cached_keys, heap types only
    is_heap: bool

    @property
    def builtin_repr(self) -> bool:
        """True when the type keeps the repr of its builtin kind, so we can reproduce it exactly."""
        return self.tp_repr == self.kind_repr


class TypeReader(RemoteReader):
    """Types of remote objects, cached by address."""

    def __init__(self, memory, layout, budget=None):
        super().__init__(memory, layout, budget)
        flags = self.facts.type_flags
        self._heaptype = flags.heaptype
        self._type_subclass = flags.type_subclass
        owners = _OWNER_NAMES[self.facts.reprs]
        flag_kinds = _FLAG_KINDS + ((_SMALL_INT_KIND,) if flags.int_subclass else ())
        self._flag_kinds = tuple((getattr(flags, name), kind, owners.get(kind, owner))
                                 for name, kind, owner in flag_kinds)
        self._named_kinds = dict(_NAMED_KINDS, **(_CLASSIC_KINDS if self.facts.old_style_classes else {}))
        self._types: Dict[int, TypeInfo] = {}
        self._metatypes: set = set()

    @entry
    def type_addr(self, addr: int) -> int:
        """Address of the object's type (``ob_type``)."""
        return self._type_addr(addr)

    def _type_addr(self, addr: int) -> int:
        check_addr(addr, "object")
        type_addr = _U64.unpack_from(self._read(addr, 16), self.layout.PyObject.ob_type)[0]
        check_addr(type_addr, "type")
        return type_addr

    def _info_of(self, addr: int) -> TypeInfo:
        return self._type_info(self._type_addr(addr))

    def _type_info(self, type_addr: int, depth: int = 0) -> TypeInfo:
        info = self._types.get(type_addr)
        if info is not None:
            return info
        if depth > MAX_BASES:
            raise CorruptDataError("type chain longer than %d at 0x%x" % (MAX_BASES, type_addr))
        check_addr(type_addr, "type")
        T = self.layout.PyTypeObject
        raw = self._read(type_addr, T.size)
        self._check_metatype(type_addr, _U64.unpack_from(raw, self.layout.PyObject.ob_type)[0])
        flags = _U64.unpack_from(raw, T.tp_flags)[0]
        name_addr = _U64.unpack_from(raw, T.tp_name)[0]
        name = self._cstring(name_addr) if name_addr else ""
        tp_repr = _U64.unpack_from(raw, T.tp_repr)[0]
        base_addr = _U64.unpack_from(raw, T.tp_base)[0]
        base = self._type_info(base_addr, depth + 1) if base_addr else None
        heap = bool(flags & self._heaptype)
        kind, owns_kind = self._classify(name, flags, heap, base)
        qualname_addr = cached_keys = 0
        if heap:
            H = self.layout.PyHeapTypeObject
            # 2.7 has neither ht_qualname nor ht_cached_keys: its __name__ (ht_name) stands in.
            first = H.get("ht_qualname", H.ht_name)
            last = H.get("ht_cached_keys", first)
            head = self._read(type_addr + first, last + 8 - first)
            qualname_addr = _U64.unpack_from(head, 0)[0]
            cached_keys = _U64.unpack_from(head, last - first)[0] if "ht_cached_keys" in H else 0
        info = TypeInfo(
            addr=type_addr, name=name, flags=flags, kind=kind,
            basicsize=_I64.unpack_from(raw, T.tp_basicsize)[0],
            itemsize=_I64.unpack_from(raw, T.tp_itemsize)[0],
            dictoffset=_I64.unpack_from(raw, T.tp_dictoffset)[0],
            tp_repr=tp_repr, kind_repr=tp_repr if owns_kind or base is None else base.kind_repr,
            tp_dict=_U64.unpack_from(raw, T.tp_dict)[0],
            qualname_addr=qualname_addr, cached_keys=cached_keys, is_heap=heap)
        self._types[type_addr] = info
        return info

    def _classify(self, name: str, flags: int, heap: bool, base: Optional[TypeInfo]) -> Tuple[str, bool]:
        """(kind, whether this type is the builtin that owns the kind) for a type being cached."""
        if not heap and name in self._named_kinds:
            return self._named_kinds[name], True
        for flag, kind, owner in self._flag_kinds:
            if flags & flag:
                return kind, not heap and name == owner
        if base is not None and base.kind in _INHERITED_KINDS:
            return base.kind, False
        return ("instance" if heap else "other"), base is None

    def _check_metatype(self, type_addr: int, meta_addr: int) -> None:
        """A type's own type must be a type (has the TYPE_SUBCLASS flag): cheap garbage filter."""
        if meta_addr in self._metatypes:
            return
        check_addr(meta_addr, "metatype")
        flags = _U64.unpack(self._read(meta_addr + self.layout.PyTypeObject.tp_flags, 8))[0]
        if not flags & self._type_subclass:
            raise CorruptDataError("0x%x is not a type object (its type 0x%x is no metatype)" % (type_addr, meta_addr))
        self._metatypes.add(meta_addr)

    @entry
    def type_name(self, type_addr: int) -> str:
        """``tp_name``, as CPython prints it in messages (``'int'``, ``'collections.OrderedDict'``, ``'Inner'``)."""
        return self._type_info(type_addr).name

    @entry
    def kind(self, addr: int) -> str:
        """What an object is, by its builtin layout.

        One of 'none', 'bool', 'int', 'float', 'complex', 'str', 'bytes', 'tuple',
        'list', 'dict', 'set', 'frozenset', 'type', 'function', 'module', 'cell',
        'instance' (object of a heap type with no builtin layout) or 'other'.
        Subclasses of builtins report the builtin's kind (a dict subclass is
        'dict'), since that tells which reader applies.
        """
        return self._info_of(addr).kind
