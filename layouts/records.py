"""Data classes for the model and the facts, at a fraction of ``dataclasses``' start-up cost.

Why: a one-shot ``pyspy-repl dump`` defines some thirty data classes before it reads a byte.
The standard ``dataclasses`` module costs its own import (``inspect``, ``dis``, ``enum``...)
and compiles every generated method on its own (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__``, ``__delattr__``); together that was about a quarter of the
dump's CPU.  This module keeps the same declarations and the same behaviour the code relies
on: ``@dataclass(frozen=, slots=, eq=, repr=)`` over annotated fields in definition order,
base classes' fields first; ``field(default=, default_factory=, repr=, compare=)``;
immutable instances (``FrozenInstanceError``, an ``AttributeError``), value equality and
hashing over the compared fields, ``__slots__`` by recreating the class, pickling and copying
of frozen slotted instances; and ``fields``, ``replace``, ``asdict`` and ``is_dataclass``.
Each class's methods are compiled from one generated source, once (or taken from ``CODE``).

Not supported (not used here): ``order``, ``InitVar``, ``__post_init__``, keyword-only
fields, zero-argument ``super()`` in a slotted class's methods.
"""
from __future__ import annotations

import marshal
from _operator import itemgetter as _itemgetter  # built in; ``operator`` is a module to load

__all__ = ["FrozenInstanceError", "MISSING", "Field", "NamedRow", "asdict", "dataclass", "field", "fields",
           "is_dataclass", "replace"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
_FIELDS = "__dataclass_fields__"

#: Compiled methods by (file name, generated source), or their ``marshal`` bytes (or a memoryview of
#: them): a front end may fill it from a cache of earlier runs before any class is declared
#: (``repl/startup.py``), so no ``compile`` runs at start-up; this module itself does no I/O.
CODE: dict = {}
#: The keys compiled in this run (what a cache lacks).
COMPILED: list = []
#: The keys taken from ``CODE`` in this run (what a cache must keep first).
USED: list = []


class FrozenInstanceError(AttributeError):
    """Assigning to or deleting a field of a frozen instance."""


class Field:
    """One field: its name, default or default factory, and whether repr and ``==`` use it."""

    __slots__ = ("name", "default", "default_factory", "repr", "compare", "init")

    def __init__(self, default=MISSING, default_factory=MISSING, repr: bool = True, compare: bool = True,
                 init: bool = True):
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.init = init

    def __repr__(self) -> str:
        return "Field(name=%r, default=%r, default_factory=%r)" % (self.name, self.default, self.default_factory)


def field(*, default=MISSING, default_factory=MISSING, repr: bool = True, compare: bool = True,
          init: bool = True) -> Field:
    return Field(default, default_factory, repr, compare, init)


def dataclass(cls=None, *, frozen: bool = False, slots: bool = False, eq: bool = True, repr: bool = True,
              init: bool = True):
    """``dataclasses.dataclass`` for what this project uses (see the module's docstring)."""
    def wrap(cls):
        return _process(cls, frozen, slots, eq, repr, init)
    return wrap if cls is None else wrap(cls)


def fields(class_or_instance) -> tuple:
    try:
        found = getattr(class_or_instance, _FIELDS)
    except AttributeError:
        raise TypeError("must be called with a dataclass type or instance") from None
    return tuple(found.values())


def is_dataclass(obj) -> bool:
    cls = obj if isinstance(obj, type) else type(obj)
    return hasattr(cls, _FIELDS)


def replace(obj, **changes):
    """A copy of ``obj`` with some fields changed (through ``__init__``, like ``dataclasses``)."""
    for f in getattr(obj, _FIELDS).values():
        if f.init and f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def asdict(obj, dict_factory=dict):
    if not is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on dataclass instances")
    return _asdict(obj, dict_factory)


def _asdict(value, dict_factory):
    if hasattr(type(value), _FIELDS):
        return dict_factory([(f.name, _asdict(getattr(value, f.name), dict_factory))
                             for f in getattr(value, _FIELDS).values()])
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_asdict(v, dict_factory) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_asdict(v, dict_factory) for v in value)
    if isinstance(value, dict):
        return type(value)((_asdict(k, dict_factory), _asdict(v, dict_factory)) for k, v in value.items())
    return value


def _is_classvar(annotation) -> bool:
    text = annotation if type(annotation) is str else repr(annotation)
    return text.startswith(_CLASSVAR)


_CLASSVAR = ("ClassVar", "typing.ClassVar")


def _process(cls, frozen: bool, slots: bool, eq: bool, want_repr: bool, want_init: bool):
    found = {}
    for base in cls.__mro__[-1:0:-1]:
        inherited = base.__dict__.get(_FIELDS)
        if inherited:
            found.update(inherited)
    own = []
    body = cls.__dict__     # one mapping proxy for the loop (each ``cls.__dict__`` makes one)
    for name, annotation in body.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = body.get(name, MISSING)
        is_field = type(value) is Field
        f = value if is_field else Field(value)
        f.name = name
        found[name] = f
        own.append(name)
        if is_field:  # a class attribute holds the plain default, as in dataclasses
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    if slots:
        cls = _with_slots(cls, own)
    setattr(cls, _FIELDS, found)
    names = tuple(found)
    cls.__match_args__ = tuple(n for n in names if found[n].init)
    body = cls.__dict__
    explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
    methods = _compile(cls, found, frozen,
                       init=want_init and "__init__" not in body,
                       repr_=want_repr and "__repr__" not in body,
                       eq=eq and "__eq__" not in body,
                       hash_=eq and frozen and not explicit_hash)
    for name, function in methods.items():
        function.__qualname__ = "%s.%s" % (cls.__qualname__, name)
        setattr(cls, name, function)
    if eq and not frozen and not explicit_hash:
        cls.__hash__ = None  # mutable and compared by value: unhashable, as dataclasses makes it
    if frozen and slots:
        cls.__getstate__ = _getstate
        cls.__setstate__ = _setstate
    return cls


def _with_slots(cls, own):
    body = dict(cls.__dict__)
    inherited = set()
    for base in cls.__mro__[1:-1]:
        inherited.update(getattr(base, "__slots__", ()))
    body["__slots__"] = tuple(n for n in own if n not in inherited)
    for name in own:
        body.pop(name, None)  # defaults live in __init__; a class attribute would shadow the slot
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    qualname = getattr(cls, "__qualname__", None)
    new = type(cls)(cls.__name__, cls.__bases__, body)
    if qualname is not None:
        new.__qualname__ = qualname
    return new


def _compile(cls, found, frozen: bool, init: bool, repr_: bool, eq: bool, hash_: bool):
    """The asked methods, compiled from one source (one ``compile`` per class), or taken from
    ``CODE`` by the class's signature: what the source is made of (field names, which have
    defaults or factories, which are set through a slot, which ``repr`` and ``==`` use, which
    methods are asked for).  Why a signature and not the source as the key: building the
    source was most of the cost of declaring a class whose code was stored."""
    if not (init or repr_ or eq or hash_ or frozen):
        return {}
    names = list(found)
    env = {"_M": MISSING, "_set": object.__setattr__, "_cls": cls, "_Frozen": FrozenInstanceError,
           "_fieldset": frozenset(names)}
    # per field: (name, how __init__ sets it, whether repr shows it, whether == compares it);
    # how: "" a parameter, "d"/"f" a parameter with a default / factory, "D"/"F" not a
    # parameter (init=False), "-" not set; an "S" after it: set through its slot
    shape = []
    # a slot can hold a field only if some class of the MRO declares ``__slots__``
    slotted = frozen and any("__slots__" in klass.__dict__ for klass in cls.__mro__[:-1])
    for i, name in enumerate(names):
        f = found[name]
        how = "-"
        if init:
            if f.default_factory is not MISSING:
                env["_f%d" % i] = f.default_factory
                how = "f" if f.init else "F"
            elif f.default is not MISSING:
                env["_d%d" % i] = f.default
                how = "d" if f.init else "D"
            else:
                how = "" if f.init else "-"
            if how != "-" and slotted:
                slot = _slot_of(cls, name)
                if slot is not None:
                    # a frozen slotted field is set through its slot's own ``__set__``: 40% faster
                    # than ``object.__setattr__`` (no lookup by name), and the model makes many
                    env["_s%d" % i] = slot.__set__
                    how += "S"
        shape.append((name, how, f.repr, f.compare))
    signature = (init, repr_, eq, hash_, frozen, tuple(shape))
    key = ("<records of %s>" % cls.__qualname__, signature)
    code = CODE.get(key)
    if type(code) is bytes or type(code) is memoryview:  # as a cache stores it: unmarshalled when first used
        try:
            code = CODE[key] = marshal.loads(code)
        except (ValueError, EOFError, TypeError):
            code = None
        if type(code).__name__ != "code":
            code = None
    if code is not None:
        USED.append(key)
    else:
        code = CODE[key] = compile(_source(signature), key[0], "exec")
        COMPILED.append(key)
    exec(code, env)
    wanted = [n for n, on in (("__init__", init), ("__repr__", repr_), ("__eq__", eq), ("__hash__", hash_),
                              ("__setattr__", frozen), ("__delattr__", frozen)) if on]
    return {n: env[n] for n in wanted}


def _source(signature) -> str:
    """The methods' source for a signature of ``_compile`` (the names it binds are in its env)."""
    init, repr_, eq, hash_, frozen, shape = signature
    lines = []
    if init:
        params, body = ["self"], []
        for i, (name, how, _, _) in enumerate(shape):
            kind = how.rstrip("S")
            if kind == "-":
                continue
            if kind == "F":
                value = "_f%d()" % i
            elif kind == "D":
                value = "_d%d" % i
            elif kind == "f":
                params.append("%s=_M" % name)
                value = "_f%d() if %s is _M else %s" % (i, name, name)
            elif kind == "d":
                params.append("%s=_d%d" % (name, i))
                value = name
            else:
                params.append(name)
                value = name
            if how.endswith("S"):
                body.append("  _s%d(self, %s)" % (i, value))
            else:
                body.append(("  _set(self, %r, %s)" if frozen else "  self.%s = %s") % (name, value))
        lines.append("def __init__(%s):" % ", ".join(params))
        lines.extend(body or ["  pass"])
    if repr_:
        shown = ", ".join("%s={self.%s!r}" % (name, name) for name, _, shows, _ in shape if shows)
        lines.append("def __repr__(self):")
        lines.append("  return f'{self.__class__.__qualname__}(%s)'" % shown.replace("'", "\\'"))
    compared = [name for name, _, _, compares in shape if compares]
    key = "(%s,)" % ", ".join("self.%s" % n for n in compared) if compared else "()"
    if eq:
        other = "(%s,)" % ", ".join("other.%s" % n for n in compared) if compared else "()"
        lines.append("def __eq__(self, other):")
        lines.append("  if other.__class__ is self.__class__:")
        lines.append("    return %s == %s" % (key, other))
        lines.append("  return NotImplemented")
    if hash_:
        lines.append("def __hash__(self):")
        lines.append("  return hash(%s)" % key)
    if frozen:
        lines.append("def __setattr__(self, name, value):")
        lines.append("  if type(self) is _cls or name in _fieldset:")
        lines.append("    raise _Frozen('cannot assign to field %r' % name)")
        lines.append("  super(_cls, self).__setattr__(name, value)")
        lines.append("def __delattr__(self, name):")
        lines.append("  if type(self) is _cls or name in _fieldset:")
        lines.append("    raise _Frozen('cannot delete field %r' % name)")
        lines.append("  super(_cls, self).__delattr__(name)")
    return "\n".join(lines)


def _slot_of(cls, name: str):
    """The slot (member descriptor) that holds field ``name`` of ``cls``, or None."""
    for klass in cls.__mro__:
        value = klass.__dict__.get(name)
        if value is not None:
            return value if type(value).__name__ == "member_descriptor" else None
    return None


def _getstate(self):
    return [getattr(self, f) for f in getattr(self, _FIELDS)]


def _setstate(self, state):
    for name, value in zip(getattr(self, _FIELDS), state):
        object.__setattr__(self, name, value)


class _RowMeta(type):
    """Makes each ``NamedRow`` subclass a slotted tuple with one read-only property per field."""

    def __new__(mcls, name, bases, namespace):
        if not any(isinstance(b, _RowMeta) for b in bases):
            return super().__new__(mcls, name, bases, namespace)
        names = tuple(namespace.get("__annotations__", {}))
        defaults = {}
        for index, field_name in enumerate(names):
            if field_name in namespace:
                defaults[field_name] = namespace[field_name]
            elif defaults:
                raise TypeError("%s: field %r without a default follows one with a default" % (name, field_name))
            namespace[field_name] = property(_itemgetter(index), doc="Field %d: %s" % (index, field_name))
        namespace.update(__slots__=(), _fields=names, _field_defaults=defaults)
        return super().__new__(mcls, name, bases, namespace)


class NamedRow(tuple, metaclass=_RowMeta):
    """``typing.NamedTuple`` for the rows the engine builds by the thousand, at a fraction
    of its start-up: the same ``class Row(NamedRow): a: int; b: str = ""`` declaration,
    a tuple with named read-only fields, defaults, ``_fields``, ``_replace``, ``_asdict``,
    equality, hashing and pickling as tuples.  Why: ``NamedTuple`` builds each class by
    compiling generated source (``collections.namedtuple``) and needs ``typing`` itself;
    ELF parsing alone declared five, about two milliseconds of every one-shot dump."""

    __slots__ = ()
    _fields: tuple = ()
    _field_defaults: dict = {}

    def __new__(cls, *args, **kwargs):
        names = cls._fields
        if len(args) > len(names):
            raise TypeError("%s takes %d values, %d given" % (cls.__name__, len(names), len(args)))
        if kwargs or len(args) < len(names):
            values = list(args)
            for field_name in names[len(args):]:
                if field_name in kwargs:
                    values.append(kwargs.pop(field_name))
                elif field_name in cls._field_defaults:
                    values.append(cls._field_defaults[field_name])
                else:
                    raise TypeError("%s: missing value for %r" % (cls.__name__, field_name))
            if kwargs:
                raise TypeError("%s: unexpected or repeated %s" % (cls.__name__, ", ".join(sorted(kwargs))))
            args = values
        return tuple.__new__(cls, args)

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % pair for pair in zip(self._fields, self)))

    def __getnewargs__(self):
        return tuple(self)

    def _replace(self, **changes):
        return type(self)(**{**self._asdict(), **changes})

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self))
