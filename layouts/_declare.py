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


from construct import (Array, Bytes, Construct, Float64l, Int8sl, Int8ul, Int16sl, Int16ul,
                       Int32sl, Int32ul, Int64sl, Int64ul, Padding, Pass, Struct)

from .compiled import Field, StructOffsets

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Tuple


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
