"""The ``Layout``: every fact about one CPython version that the engine needs.

A layout holds the construct declarations of the structs pyspy-repl reads
(``declarations``), their compiled offsets (``structs``, used on the hot
path), and ``Features``: the behaviours that are not offsets (which frame
model, which line-table format, how the GIL is found...).  The rest of the
engine asks the layout and never tests version numbers itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Dict, Mapping, Optional, Tuple

from construct import Struct

from ._declare import StructOffsets, compile_struct


@dataclass(frozen=True)
class Features:
    """Version behaviours that are not struct offsets."""

    #: "frame_object" (3.8-3.10: linked PyFrameObjects) or "interpreter_frame" (3.11+).
    frame_model: str
    #: How a thread state points at its innermost frame: "frame", "cframe" or "current_frame".
    tstate_frame: str
    #: Line table format: "lnotab" (3.8-3.9), "linetable" (3.10) or "locations" (3.11+).
    line_table: str
    #: Bytes per unit of PyFrameObject.f_lasti (1 up to 3.9, 2 in 3.10).
    lasti_unit: int = 1
    #: Field of _PyInterpreterFrame holding the code object.
    frame_code_field: str = "f_code"
    #: Field of _PyInterpreterFrame pointing into the bytecode.
    frame_instr_field: Optional[str] = None
    #: Low bits of _PyStackRef values that are tags, not address (3.14+: 3).
    stackref_tag_mask: int = 0
    #: _PyInterpreterFrame.owner values from this one up are interpreter-internal frames.
    skip_owner_from: Optional[int] = None
    #: "ob_size" (sign and digit count in ob_size) or "lv_tag" (3.12+).
    long_kind: str = "ob_size"
    #: "dk_size" (3.8-3.10 keys with 24-byte entries) or "log2" (3.11+, unicode or general entries).
    dict_keys_kind: str = "dk_size"
    #: Where instance attributes live: "dictoffset", "pre_header_311", "pre_header_312", "inline_values".
    instance_dict: str = "dictoffset"
    #: Where the GIL is: "runtime" (3.8-3.11) or "interpreter" (3.12+).
    gil: str = "runtime"
    #: The interpreter names OS threads after threading.Thread names (3.14+).
    os_thread_names: bool = False
    #: co_localspluskinds bits: local, cell, free, hidden (0 where the version lacks it).
    fast_local: int = 0x20
    fast_cell: int = 0x40
    fast_free: int = 0x80
    fast_hidden: int = 0
    #: Name of the _Py_DebugOffsets declaration the target carries (3.13+).
    debug_offsets: Optional[str] = None
    #: PyASCIIObject.state bits.
    unicode_kind_shift: int = 2
    unicode_compact_bit: int = 5
    unicode_ascii_bit: int = 6
    #: Py_TPFLAGS_INLINE_VALUES (3.13+) and Py_TPFLAGS_MANAGED_DICT (3.12+) bits.
    tpflags_inline_values: int = 0
    tpflags_managed_dict: int = 0
    free_threaded: bool = False


@dataclass(frozen=True)
class Layout:
    """One CPython version's structures, declared and compiled."""

    version: Tuple[int, int]
    features: Features
    declarations: Mapping[str, Struct] = field(repr=False)
    structs: Mapping[str, StructOffsets] = field(repr=False)
    #: Where the run-time debug offsets disagreed with the static declaration.
    mismatches: Tuple[str, ...] = ()

    def __getattr__(self, name: str) -> StructOffsets:
        # Only called for names that are not dataclass fields: struct lookups.
        try:
            return self.__dict__["structs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def has(self, struct_name: str, field_name: str) -> bool:
        entry = self.structs.get(struct_name)
        return entry is not None and field_name in entry

    def with_structs(self, structs: Mapping[str, StructOffsets], mismatches: Tuple[str, ...]) -> "Layout":
        return replace(self, structs=dict(structs), mismatches=mismatches)


def layout_from_module(module: ModuleType) -> Layout:
    """Collect every ``cstruct`` declaration of a version module into a Layout."""
    declarations: Dict[str, Struct] = {
        name: value for name, value in vars(module).items()
        if isinstance(value, Struct)
    }
    structs = {name: compile_struct(name, decl) for name, decl in declarations.items()}
    return Layout(version=module.VERSION, features=module.FEATURES,
                  declarations=declarations, structs=structs)
