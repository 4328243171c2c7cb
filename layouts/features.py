"""Version behaviours that are not struct offsets (no construct needed)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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
