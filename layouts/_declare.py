"""Declaring C structs with construct, and compiling them for the hot path.

CPython's structs are declared here by the byte offset of each field that
pyspy-repl reads (measured from each version's DWARF, see
``tests/tools/gdb_offsets.py``), with padding in between, so a declaration is
an ordinary ``construct.Struct`` that can parse a whole struct for tests and
debugging.  Sampling never calls construct: ``compile_struct`` walks a
declaration once and turns it into plain offsets plus precompiled
``struct.Struct`` readers.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, Mapping, Tuple

from construct import (Array, Bytes, Construct, Float64l, Int8sl, Int8ul, Int16sl, Int16ul,
                       Int32sl, Int32ul, Int64sl, Int64ul, Padding, Pass, Struct)

#: A remote pointer (x86-64 / aarch64: 8 bytes, little endian).
Ptr = Int64ul
Ssize = Int64sl

_FORMATS = {
    Int8ul: "B", Int8sl: "b", Int16ul: "H", Int16sl: "h", Int32ul: "I", Int32sl: "i",
    Int64ul: "Q", Int64sl: "q", Float64l: "d",
}


def cstruct(size: int, *fields: Tuple[int, str, Construct]) -> Struct:
    """Build a ``Struct`` of ``size`` bytes with each field at its C offset."""
    parts = []
    position = 0
    for offset, name, kind in sorted(fields, key=lambda f: (f[0], f[2].sizeof() if f[2] is not Pass else 0)):
        if offset < position:
            raise ValueError("field %s at %d overlaps the previous field (ends at %d)" % (name, offset, position))
        if offset > position:
            parts.append(Padding(offset - position))
        parts.append(name / kind)
        position = offset + kind.sizeof()
    if size < position:
        raise ValueError("declared size %d is smaller than the fields (%d)" % (size, position))
    if size > position:
        parts.append(Padding(size - position))
    return Struct(*parts)


@dataclass(frozen=True)
class Field:
    """A compiled field: where it is, and how to read it without construct."""

    offset: int
    size: int
    fmt: str | None  # struct format of a scalar field, None for blobs and markers


class StructOffsets:
    """Compiled form of one declaration: ``offsets.field`` is the byte offset.

    Attribute access gives the offset (an int) because that is what the hot
    path needs; ``fields`` keeps sizes and formats and ``reader(name)`` gives a
    precompiled ``struct.Struct`` for one field.
    """

    __slots__ = ("name", "size", "fields", "__dict__")

    def __init__(self, name: str, size: int, fields: Mapping[str, Field]):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "fields", dict(fields))
        for field_name, field in fields.items():
            self.__dict__[field_name] = field.offset

    def __setattr__(self, key, value):
        raise AttributeError("StructOffsets is immutable")

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def get(self, name: str, default=None):
        field = self.fields.get(name)
        return default if field is None else field.offset

    def reader(self, name: str) -> struct.Struct:
        field = self.fields[name]
        if field.fmt is None:
            raise TypeError("%s.%s is not a scalar field" % (self.name, name))
        return struct.Struct("<" + field.fmt)

    def with_offsets(self, overrides: Mapping[str, int], size: int | None = None) -> "StructOffsets":
        """A copy whose listed fields move (used for run-time debug offsets)."""
        fields = dict(self.fields)
        for name, offset in overrides.items():
            old = fields.get(name)
            fields[name] = Field(offset, old.size if old else 8, old.fmt if old else "Q")
        return StructOffsets(self.name, self.size if size is None else size, fields)

    def __repr__(self) -> str:
        inner = ", ".join("%s=%d" % (k, v.offset) for k, v in self.fields.items())
        return "<%s size=%d %s>" % (self.name, self.size, inner)


def compile_struct(name: str, declaration: Struct) -> StructOffsets:
    """Walk a ``cstruct`` declaration once, recording every named field."""
    fields: Dict[str, Field] = {}
    position = 0
    for sub in declaration.subcons:
        size = sub.sizeof()
        if sub.name:
            inner = getattr(sub, "subcon", sub)
            fields[sub.name] = Field(position, size, _FORMATS.get(inner))
        position += size
    return StructOffsets(name, position, fields)


def blob(size: int) -> Construct:
    """An embedded struct whose interior is read through its own declaration."""
    return Bytes(size)


def array_of(count: int, kind: Construct) -> Construct:
    return Array(count, kind)


__all__ = [
    "Array", "Bytes", "Float64l", "Int8sl", "Int8ul", "Int16sl", "Int16ul", "Int32sl", "Int32ul",
    "Int64sl", "Int64ul", "Pass", "Ptr", "Ssize", "cstruct", "compile_struct", "blob", "array_of",
    "StructOffsets", "Field",
]
