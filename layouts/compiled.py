"""The compiled form of a layout: plain offsets, no construct.

This is what the hot path uses, and what a cached layout is rebuilt from
without importing construct at all (see ``Layout.to_data``).
"""
from __future__ import annotations

from .records import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Mapping

#: What a 3.13+ target's ``_Py_DebugOffsets`` (the start of ``_PyRuntime``) begins with, whose
#: offsets overlay a compiled layout.  Here, not in ``debug_offsets``: every attach compares
#: with it (discovery), most of them to interpreters older than the table.
COOKIE = b"xdebugpy"

@dataclass(frozen=True)
class Field:
    """A compiled field: where it is, and how to read it without construct."""

    offset: int
    size: int
    fmt: str | None  # struct format of a scalar field, None for blobs and markers


class StructOffsets:
    """Compiled form of one declaration: ``offsets.field`` is the byte offset.

    Attribute access gives the offset (an int) because that is what the hot
    path needs; ``fields`` keeps sizes and formats.
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

    def to_data(self) -> dict:
        return {"size": self.size, "fields": {k: [f.offset, f.size, f.fmt] for k, f in self.fields.items()}}

    @classmethod
    def from_data(cls, name: str, data: dict) -> "StructOffsets":
        return cls(name, data["size"], {k: Field(*v) for k, v in data["fields"].items()})
