"""The ``Layout``: every fact about one CPython version that the engine needs.

A layout holds the construct declarations of the structs pyspy-repl reads
(``declarations``), their compiled offsets (``structs``, used on the hot
path), and ``facts``: what is not an offset (type flag bits, int digits,
dict formats, tagged pointers, frame owners and the entry-frame marker...,
see ``layouts/facts.py``).  The rest of the engine asks the layout and never
tests version numbers itself.
"""
from __future__ import annotations

from .records import dataclass, field, replace

from .compiled import StructOffsets
from .facts import Facts

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from types import ModuleType
    from typing import Dict, Mapping, Tuple


@dataclass(frozen=True)
class Layout:
    """One CPython version's structures, declared and compiled."""

    version: Tuple[int, int]
    facts: Facts
    structs: Mapping[str, StructOffsets] = field(repr=False)
    #: Where the run-time debug offsets disagreed with the static declaration.
    mismatches: Tuple[str, ...] = ()

    @property
    def features(self) -> Facts:
        """The old name of ``facts`` (kept so code written against it keeps working)."""
        return self.facts

    def __getattr__(self, name: str) -> StructOffsets:
        # Only called for names that are not dataclass fields: struct lookups.  The struct is
        # then kept in the instance dict, so the next ``layout.PyASCIIObject`` is a plain
        # attribute hit, not a Python call (readers ask it for every object they decode).
        try:
            found = self.__dict__["structs"][name]
        except KeyError:
            raise AttributeError(name) from None
        self.__dict__[name] = found
        return found

    @property
    def declarations(self) -> Mapping:
        """The construct declarations (imports construct; not for the hot path)."""
        import importlib
        module = importlib.import_module("%s.v%d_%d" % ((__package__,) + tuple(self.version)))
        return _declarations(module)

    def to_data(self) -> dict:
        """A JSON-able form, so a cached layout can be rebuilt without construct."""
        return {"version": list(self.version), "facts": self.facts.to_data(),
                "structs": {name: s.to_data() for name, s in self.structs.items()},
                "mismatches": list(self.mismatches)}

    @classmethod
    def from_data(cls, data: dict) -> "Layout":
        return cls(version=tuple(data["version"]), facts=Facts.from_data(data["facts"]),
                   structs={name: StructOffsets.from_data(name, s) for name, s in data["structs"].items()},
                   mismatches=tuple(data.get("mismatches", ())))

    def with_structs(self, structs: Mapping[str, StructOffsets], mismatches: Tuple[str, ...]) -> "Layout":
        return replace(self, structs=dict(structs), mismatches=mismatches)


def _declarations(module: ModuleType) -> Dict:
    from construct import Struct
    return {name: value for name, value in vars(module).items() if isinstance(value, Struct)}


def layout_from_module(module: ModuleType) -> Layout:
    """Compile every ``cstruct`` declaration of a version module into a Layout."""
    from ._declare import compile_struct
    structs = {name: compile_struct(name, decl) for name, decl in _declarations(module).items()}
    return Layout(version=module.VERSION, facts=module.FACTS, structs=structs)
