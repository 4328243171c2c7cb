"""CPython's ``repr()`` of remote objects, rebuilt from memory without running code.

``ObjectReader.repr(addr, max_len, depth)`` is CPython's ``repr()`` for
builtin values (None, bool, int, float, complex, str, bytes, tuple, list,
dict, set, frozenset, and subclasses of them that keep the builtin repr), for
functions, classes, modules and cells, and ``object.__repr__`` for every other
object (including objects whose class defines ``__repr__``: we cannot run it).
A container element that cannot be read shows as ``<invalid object at 0x...>``
and the rest of the container renders normally.

Known limits: str escapes follow the *local* interpreter's Unicode database
(it only matters for characters assigned between the two versions'
databases); ints beyond ``MAX_INT_DIGITS`` digits show as ``<int of N
bits>`` and huge ints are printed even where the target's 4300-digit limit
would raise.
"""
from __future__ import annotations

import struct

from ..errors import CorruptDataError, MemoryReadError
from .base import MAX_CSTRING, MAX_INT_DIGITS, MAX_ITEMS, MAX_STR_CHARS, MAX_VISITS, CallCapError, entry
from .namespaces import NamespaceReader
from .types import TypeInfo
from .values import decode_chars

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Dict, List, Optional


#: Characters (or bytes) of a long str/bytes read to choose the quote like CPython does.
QUOTE_SCAN = 4096
#: ints with up to this many bits are converted by ``str`` directly (below the 4300-digit limit).
_STR_SAFE_BITS = 13_000
#: The marker appended when a repr is cut, and what stands for a container beyond the depth cap.
ELLIPSIS = "..."
_I64 = struct.Struct("<q")
# Static singletons whose repr is a constant.
_SINGLETON_REPRS = {"NoneType": "None", "ellipsis": "Ellipsis", "NotImplementedType": "NotImplemented"}


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


class ObjectReader(NamespaceReader):
    """Reads and renders remote Python objects through a ``MemoryReader`` and a ``Layout``."""

    def __init__(self, memory, layout, budget=None):
        super().__init__(memory, layout, budget)
        # The version's repr rules (facts.reprs): 2.7 renders several kinds its own way.
        self._renderers = dict(_RENDERERS, **_STYLE_RENDERERS[self.facts.reprs])

    @entry
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
        self.budget.charge(0, 1)
        if addr == 0:
            return "<NULL>"
        info = self._info_of(addr)
        if not info.is_heap and info.name in _SINGLETON_REPRS:
            return _SINGLETON_REPRS[info.name]
        if info.name.startswith("numpy.") and not info.is_heap:
            text = self._numpy_repr(addr, info)
            if text is not None:
                return text
        if not info.builtin_repr:
            return self._default_repr(addr, info)
        render = self._renderers.get(info.kind)
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

    #: Asked once for the target's numpy major version (set by the snapshot engine; None: unknown).
    numpy_version_probe: Optional[Callable[[], Optional[int]]] = None

    def _numpy_repr(self, addr: int, info: TypeInfo) -> Optional[str]:
        from . import numpyvalues
        major = getattr(self, "_numpy_major", False)
        if major is False:
            probe = self.numpy_version_probe
            try:
                major = probe() if probe is not None else None
            except (CorruptDataError, MemoryReadError, ValueError):
                major = None
            self._numpy_major = major
        return numpyvalues.render(self, addr, info, major)

    def _element(self, addr: int, depth: int, room: int, active: set) -> str:
        """One container element; an unreadable one shows as ``<invalid object at 0x...>``."""
        try:
            return self._repr(addr, depth, room, active)
        except CallCapError:
            raise
        except (CorruptDataError, MemoryReadError):
            return "<invalid object at 0x%x>" % addr

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
        text = repr(decode_chars(self._read_in(addr, data, count * kind), kind, addr))
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
        used_at = self.layout.PyDictObject.ma_used
        used = _I64.unpack_from(self._read(addr, used_at + 8), used_at)[0]
        self._prefetch(a for pair in pairs for a in pair)
        parts: List[str] = []
        length = 1
        for key_addr, value_addr in pairs:
            if length > room:
                break
            key = self._element(key_addr, depth - 1, room - length, active)
            value = self._element(value_addr, depth - 1, room - length - len(key) - 2, active)
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
            parts.append(self._element(item, depth - 1, room - length, active))
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
        if filename and self._info_of(filename).kind in self._text_kinds:
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

    def _default_repr(self, addr: int, info: TypeInfo) -> str:
        """``object.__repr__``: ``<module.Qualname object at 0x...>``, module left out for builtins."""
        qualname, module = self._qualname_module(info)
        if module is not None and module not in ("builtins", "__builtin__"):
            return "<%s.%s object at 0x%x>" % (module, qualname, addr)
        return "<%s object at 0x%x>" % (info.name, addr)

    def _str_attr(self, addr: Optional[int], default: str) -> str:
        if addr and self._info_of(addr).kind in self._text_kinds:
            return self._string(addr, MAX_STR_CHARS)
        return default


class _Py2Renderers:
    """2.7's own repr() rules (``facts.reprs == "py2"``), as functions taking the reader."""

    @staticmethod
    def unicode(self, addr, info, depth, room, active) -> str:
        """u'...': every non-ASCII character escaped (\\xNN, \\uNNNN, \\UNNNNNNNN), like ascii()."""
        length, kind, data = self._str_layout(addr)
        count = min(length, max(room, QUOTE_SCAN))
        text = "u" + ascii(decode_chars(self._read_in(addr, data, count * kind), kind, addr))
        return text if count == length else text[:-1]

    @staticmethod
    def string(self, addr, info, depth, room, active) -> str:
        """2.7 str: a bytes repr without the b prefix."""
        return ObjectReader._render_bytes(self, addr, info, depth, room, active)[1:]

    @staticmethod
    def long(self, addr, info, depth, room, active) -> str:
        return ObjectReader._render_int(self, addr, info, depth, room, active) + "L"

    @staticmethod
    def small_int(self, addr, info, depth, room, active) -> str:
        return str(self._small_int(addr))

    @staticmethod
    def set(self, addr, info, depth, room, active) -> str:
        """``set([1, 2])``, ``frozenset([1])``, ``set([])``."""
        size, items = self._set_keys(addr, _items_for(room))
        if size == 0:
            return "%s([])" % info.name
        return "%s([%s])" % (info.name, self._join(items, size, depth, room - len(info.name) - 4, active))

    @staticmethod
    def type(self, addr, info, depth, room, active) -> str:
        """``<type 'int'>`` for static types, ``<class 'mod.Name'>`` for heap types."""
        target = self._type_info(addr)
        if not target.name:
            return "<type at 0x%x>" % addr
        name, module = self._qualname_module(target)
        label = "class" if target.is_heap else "type"
        if module is not None and module not in ("builtins", "__builtin__"):
            return "<%s '%s.%s'>" % (label, module, name)
        return "<%s '%s'>" % (label, target.name)

    @staticmethod
    def function(self, addr, info, depth, room, active) -> str:
        name = self._ptr(addr + self.layout.PyFunctionObject.func_name)
        return "<function %s at 0x%x>" % (self._string(name, MAX_CSTRING), addr)

    @staticmethod
    def module(self, addr, info, depth, room, active) -> str:
        """``<module 'name' from 'file'>``, or ``(built-in)`` without ``__file__``."""
        md_dict = self._ptr(addr + self.layout.PyModuleObject.md_dict)
        found = self._dict_find(md_dict, ("__name__", "__file__")) if md_dict else {}
        name = self._str_attr(found.get("__name__"), "?")
        filename = found.get("__file__")
        if filename and self._info_of(filename).kind in self._text_kinds:
            return "<module '%s' from '%s'>" % (name, self._string(filename, MAX_STR_CHARS))
        return "<module '%s' (built-in)>" % name

    @staticmethod
    def classic_class(self, addr, info, depth, room, active) -> str:
        name, module = _Py2Renderers._classic_names(self, addr)
        return "<class %s.%s at 0x%x>" % (module or "?", name, addr)

    @staticmethod
    def classic_instance(self, addr, info, depth, room, active) -> str:
        name, module = _Py2Renderers._classic_names(self, self._ptr(addr + self.layout.PyInstanceObject.in_class))
        return "<%s.%s instance at 0x%x>" % (module or "?", name, addr)

    @staticmethod
    def _classic_names(self, class_addr: int):
        C = self.layout.PyClassObject
        head = self._read(class_addr, C.size)
        name = self._str_attr(_I64.unpack_from(head, C.cl_name)[0], "?")
        cl_dict = _I64.unpack_from(head, C.cl_dict)[0]
        module = self._dict_get(cl_dict, "__module__") if cl_dict else None
        return name, (self._string(module, MAX_CSTRING) if module and self._info_of(module).kind
                      in self._text_kinds else None)


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
#: facts.reprs -> renderers that differ from CPython 3's, by kind.
_STYLE_RENDERERS: Dict[str, Dict[str, Callable[..., str]]] = {
    "py3": {},
    "py2": {
        "str": _Py2Renderers.unicode,
        "bytes": _Py2Renderers.string,
        "int": _Py2Renderers.long,
        "small_int": _Py2Renderers.small_int,
        "set": _Py2Renderers.set,
        "frozenset": _Py2Renderers.set,
        "type": _Py2Renderers.type,
        "function": _Py2Renderers.function,
        "module": _Py2Renderers.module,
        "classic_class": _Py2Renderers.classic_class,
        "classic_instance": _Py2Renderers.classic_instance,
    },
}
