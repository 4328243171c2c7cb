"""``_Py_DebugOffsets``: the table of offsets a 3.13+ interpreter carries.

CPython 3.13 and later put this table at the start of ``_PyRuntime`` so that
out-of-process tools need not guess struct layouts, which move even between
patch releases.  It is declared here per minor version (field order is the
C order; every field is a u64), and ``apply_debug_offsets`` overlays the
target's own values on the static declaration of the same version.
"""
from __future__ import annotations

import struct

from .compiled import COOKIE, StructOffsets

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Mapping, Tuple


_INTERP_313 = ("size", "id", "next", "threads_head", "gc", "imports_modules", "sysdict", "builtins",
               "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled",
               "gil_runtime_state_locked", "gil_runtime_state_holder")
_INTERP_314 = ("size", "id", "next", "threads_head", "threads_main", "gc", "imports_modules", "sysdict",
               "builtins", "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled",
               "gil_runtime_state_locked", "gil_runtime_state_holder", "code_object_generation",
               "tlbc_generation")
_TSTATE_313 = ("size", "prev", "next", "interp", "current_frame", "thread_id", "native_thread_id",
               "datastack_chunk", "status")
_TSTATE_315 = ("size", "prev", "next", "interp", "current_frame", "base_frame", "last_profiled_frame",
               "last_profiled_frame_seq", "thread_id", "native_thread_id", "datastack_chunk", "status",
               "holds_gil", "gil_requested", "current_exception", "exc_state")
_IFRAME_313 = ("size", "previous", "executable", "instr_ptr", "localsplus", "owner")
_IFRAME_314 = _IFRAME_313 + ("stackpointer", "tlbc_index")
_CODE_313 = ("size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
             "localsplusnames", "localspluskinds", "co_code_adaptive")
_CODE_314 = _CODE_313 + ("co_tlbc",)
_TYPE_313 = ("size", "tp_name", "tp_repr", "tp_flags")
_TYPE_315 = _TYPE_313 + ("tp_basicsize", "tp_dictoffset")
_UNICODE_313 = ("size", "state", "length", "asciiobject_size")
_UNICODE_315 = _UNICODE_313 + ("compactunicodeobject_size",)
_GC_313 = ("size", "collecting")
_GC_315 = _GC_313 + ("frame", "generation_stats_size", "generation_stats")
_OBJECTS = (
    ("tuple_object", ("size", "ob_item", "ob_size")),
    ("list_object", ("size", "ob_item", "ob_size")),
)
_SET = ("set_object", ("size", "used", "table", "mask"))
_REST = (
    ("dict_object", ("size", "ma_keys", "ma_values")),
    ("float_object", ("size", "ob_fval")),
    ("long_object", ("size", "lv_tag", "ob_digit")),
    ("bytes_object", ("size", "ob_size", "ob_sval")),
)
_TAIL_314 = (
    ("gen_object", ("size", "gi_name", "gi_iframe", "gi_frame_state")),
    ("llist_node", ("next", "prev")),
    ("debugger_support", ("eval_breaker", "remote_debugger_support", "remote_debugging_enabled",
                          "debugger_pending_call", "debugger_script_path", "debugger_script_path_size")),
)


#: The tables as plain data: after the 24-byte header (``char cookie[8]``,
#: ``u64 version``, ``u64 free_threaded``) come groups of u64 fields, in C order.
TABLES: Dict[str, List[Tuple[str, Tuple[str, ...]]]] = {
    "3.13": ([
        ("runtime_state", ("size", "finalizing", "interpreters_head")),
        ("interpreter_state", _INTERP_313),
        ("thread_state", _TSTATE_313),
        ("interpreter_frame", _IFRAME_313),
        ("code_object", _CODE_313),
        ("pyobject", ("size", "ob_type")),
        ("type_object", _TYPE_313),
        *_OBJECTS, *_REST,
        ("unicode_object", _UNICODE_313),
        ("gc", _GC_313),
    ]),
    "3.14": ([
        ("runtime_state", ("size", "finalizing", "interpreters_head")),
        ("interpreter_state", _INTERP_314),
        ("thread_state", _TSTATE_313),
        ("interpreter_frame", _IFRAME_314),
        ("code_object", _CODE_314),
        ("pyobject", ("size", "ob_type")),
        ("type_object", _TYPE_313),
        *_OBJECTS, _SET, *_REST,
        ("unicode_object", _UNICODE_313),
        ("gc", _GC_313),
        *_TAIL_314,
    ]),
    "3.15": ([
        ("runtime_state", ("size", "finalizing", "interpreters_head")),
        ("interpreter_state", _INTERP_314),
        ("thread_state", _TSTATE_315),
        ("err_stackitem", ("exc_value",)),
        ("interpreter_frame", _IFRAME_314),
        ("code_object", _CODE_314),
        ("pyobject", ("size", "ob_type")),
        ("type_object", _TYPE_315),
        ("heap_type_object", ("size", "ht_cached_keys")),
        *_OBJECTS, _SET, *_REST,
        ("unicode_object", _UNICODE_315),
        ("gc", _GC_315),
        *_TAIL_314,
    ]),
}


# (debug-offsets group, field) -> (our struct, our field); "size" maps to the struct size.
_MAP: Mapping[Tuple[str, str], Tuple[str, str]] = {
    ("runtime_state", "interpreters_head"): ("_PyRuntimeState", "interpreters_head"),
    ("interpreter_state", "id"): ("PyInterpreterState", "id"),
    ("interpreter_state", "next"): ("PyInterpreterState", "next"),
    ("interpreter_state", "threads_head"): ("PyInterpreterState", "threads_head"),
    ("interpreter_state", "threads_main"): ("PyInterpreterState", "threads_main"),
    ("interpreter_state", "imports_modules"): ("PyInterpreterState", "imports_modules"),
    ("interpreter_state", "sysdict"): ("PyInterpreterState", "sysdict"),
    ("interpreter_state", "builtins"): ("PyInterpreterState", "builtins"),
    ("interpreter_state", "ceval_gil"): ("PyInterpreterState", "ceval_gil"),
    ("interpreter_state", "gil_runtime_state"): ("PyInterpreterState", "_gil"),
    ("thread_state", "prev"): ("PyThreadState", "prev"),
    ("thread_state", "next"): ("PyThreadState", "next"),
    ("thread_state", "interp"): ("PyThreadState", "interp"),
    ("thread_state", "current_frame"): ("PyThreadState", "current_frame"),
    ("thread_state", "base_frame"): ("PyThreadState", "base_frame"),
    ("thread_state", "thread_id"): ("PyThreadState", "thread_id"),
    ("thread_state", "native_thread_id"): ("PyThreadState", "native_thread_id"),
    ("thread_state", "datastack_chunk"): ("PyThreadState", "datastack_chunk"),
    ("thread_state", "status"): ("PyThreadState", "_status"),
    ("thread_state", "holds_gil"): ("PyThreadState", "holds_gil"),
    ("thread_state", "gil_requested"): ("PyThreadState", "gil_requested"),
    ("thread_state", "current_exception"): ("PyThreadState", "current_exception"),
    ("thread_state", "exc_state"): ("PyThreadState", "exc_state"),
    ("err_stackitem", "exc_value"): ("_PyErr_StackItem", "exc_value"),
    ("interpreter_frame", "previous"): ("_PyInterpreterFrame", "previous"),
    ("interpreter_frame", "executable"): ("_PyInterpreterFrame", "f_executable"),
    ("interpreter_frame", "instr_ptr"): ("_PyInterpreterFrame", "instr_ptr"),
    ("interpreter_frame", "localsplus"): ("_PyInterpreterFrame", "localsplus"),
    ("interpreter_frame", "owner"): ("_PyInterpreterFrame", "owner"),
    ("interpreter_frame", "stackpointer"): ("_PyInterpreterFrame", "stackpointer"),
    ("code_object", "filename"): ("PyCodeObject", "co_filename"),
    ("code_object", "name"): ("PyCodeObject", "co_name"),
    ("code_object", "qualname"): ("PyCodeObject", "co_qualname"),
    ("code_object", "linetable"): ("PyCodeObject", "co_linetable"),
    ("code_object", "firstlineno"): ("PyCodeObject", "co_firstlineno"),
    ("code_object", "argcount"): ("PyCodeObject", "co_argcount"),
    ("code_object", "localsplusnames"): ("PyCodeObject", "co_localsplusnames"),
    ("code_object", "localspluskinds"): ("PyCodeObject", "co_localspluskinds"),
    ("code_object", "co_code_adaptive"): ("PyCodeObject", "co_code_adaptive"),
    ("pyobject", "ob_type"): ("PyObject", "ob_type"),
    ("type_object", "tp_name"): ("PyTypeObject", "tp_name"),
    ("type_object", "tp_repr"): ("PyTypeObject", "tp_repr"),
    ("type_object", "tp_flags"): ("PyTypeObject", "tp_flags"),
    ("type_object", "tp_basicsize"): ("PyTypeObject", "tp_basicsize"),
    ("type_object", "tp_dictoffset"): ("PyTypeObject", "tp_dictoffset"),
    ("heap_type_object", "ht_cached_keys"): ("PyHeapTypeObject", "ht_cached_keys"),
    ("tuple_object", "ob_item"): ("PyTupleObject", "ob_item"),
    ("tuple_object", "ob_size"): ("PyVarObject", "ob_size"),
    ("list_object", "ob_item"): ("PyListObject", "ob_item"),
    ("set_object", "used"): ("PySetObject", "used"),
    ("set_object", "table"): ("PySetObject", "table"),
    ("set_object", "mask"): ("PySetObject", "mask"),
    ("dict_object", "ma_keys"): ("PyDictObject", "ma_keys"),
    ("dict_object", "ma_values"): ("PyDictObject", "ma_values"),
    ("float_object", "ob_fval"): ("PyFloatObject", "ob_fval"),
    ("long_object", "lv_tag"): ("PyLongObject", "lv_tag"),
    ("long_object", "ob_digit"): ("PyLongObject", "long_value_ob_digit"),
    ("bytes_object", "ob_sval"): ("PyBytesObject", "ob_sval"),
    ("unicode_object", "state"): ("PyASCIIObject", "state"),
    ("unicode_object", "length"): ("PyASCIIObject", "length"),
    ("gen_object", "gi_name"): ("PyGenObject", "gi_name"),
    ("gen_object", "gi_iframe"): ("PyGenObject", "gi_iframe"),
    ("gen_object", "gi_frame_state"): ("PyGenObject", "gi_frame_state"),
}
_SIZES = {
    "runtime_state": "_PyRuntimeState", "interpreter_state": "PyInterpreterState",
    "thread_state": "PyThreadState", "interpreter_frame": "_PyInterpreterFrame",
    "code_object": "PyCodeObject", "pyobject": "PyObject", "type_object": "PyTypeObject",
    "heap_type_object": "PyHeapTypeObject", "tuple_object": "PyTupleObject",
    "list_object": "PyListObject", "set_object": "PySetObject", "dict_object": "PyDictObject",
    "float_object": "PyFloatObject", "long_object": "PyLongObject", "bytes_object": "PyBytesObject",
    "gen_object": "PyGenObject",
}
#: A struct larger than this in a debug table is garbage, not a layout.
MAX_STRUCT_SIZE = 1 << 20


class _Record(dict):
    """A parsed table or group: a dict whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def table_size(name: str) -> int:
    return 24 + 8 * sum(len(fields) for _, fields in TABLES[name])


def parse_debug_offsets(name: str, data: bytes) -> _Record:
    """Parse a target's table with ``struct`` (construct is not needed at run time)."""
    size = table_size(name)
    if len(data) < size:
        raise ValueError("debug offsets table truncated (%d of %d bytes)" % (len(data), size))
    words = struct.unpack_from("<%dQ" % ((size - 8) // 8), data, 8)
    table = _Record(cookie=bytes(data[:8]), version=words[0], free_threaded=words[1])
    position = 2
    for group, fields in TABLES[name]:
        table[group] = _Record(zip(fields, words[position:position + len(fields)]))
        position += len(fields)
    return table


def declaration(name: str):
    """The table as a construct ``Struct`` (for tests and for reading a table by hand)."""
    from construct import Bytes, Int64ul, Struct
    return Struct("cookie" / Bytes(8), "version" / Int64ul, "free_threaded" / Int64ul,
                  *(group / Struct(*(f / Int64ul for f in fields)) for group, fields in TABLES[name]))


def __getattr__(name):
    # DEBUG_OFFSETS (the construct declarations) is built on first use only.
    if name == "DEBUG_OFFSETS":
        return {version: declaration(version) for version in TABLES}
    raise AttributeError(name)


def apply_debug_offsets(structs: Mapping[str, StructOffsets], table) -> Tuple[Dict[str, StructOffsets], Tuple[str, ...]]:
    """Overlay the target's offsets on the static ones; report disagreements.

    Returns the new struct map and a tuple of "Struct.field: static X, target Y"
    strings (empty when the declaration matches the target exactly).
    """
    overrides: Dict[str, Dict[str, int]] = {}
    sizes: Dict[str, int] = {}
    mismatches: List[str] = []

    def note(struct_name: str, field_name: str, value: int) -> None:
        if value > MAX_STRUCT_SIZE:
            raise ValueError("debug offset %s.%s = %d is out of range" % (struct_name, field_name, value))
        static = structs.get(struct_name)
        old = static.get(field_name) if static is not None else None
        if old != value:
            mismatches.append("%s.%s: static %s, target %d" % (struct_name, field_name, old, value))
        overrides.setdefault(struct_name, {})[field_name] = value

    for group_name, group in table.items():
        if not isinstance(group, dict):
            continue
        for field_name, value in group.items():
            if field_name.startswith("_"):
                continue
            if field_name == "size" and group_name in _SIZES:
                struct_name = _SIZES[group_name]
                if value > MAX_STRUCT_SIZE:
                    raise ValueError("debug size of %s = %d is out of range" % (struct_name, value))
                if struct_name in structs and structs[struct_name].size != value:
                    mismatches.append("%s size: static %d, target %d" % (struct_name, structs[struct_name].size, value))
                sizes[struct_name] = value
                continue
            target = _MAP.get((group_name, field_name))
            if target is not None:
                note(target[0], target[1], value)
    interp = table.get("interpreter_state")
    if interp is not None and interp.gil_runtime_state:
        note("_gil_runtime_state", "locked", interp.gil_runtime_state_locked - interp.gil_runtime_state)
        note("_gil_runtime_state", "last_holder", interp.gil_runtime_state_holder - interp.gil_runtime_state)
    gc = table.get("gc")
    if interp is not None and gc is not None and "collecting" in gc:
        note("PyInterpreterState", "gc_collecting", interp.gc + gc.collecting)
    unicode = table.get("unicode_object")
    if unicode is not None:
        sizes["PyASCIIObject"] = unicode.asciiobject_size
        if "compactunicodeobject_size" in unicode:
            sizes["PyCompactUnicodeObject"] = unicode.compactunicodeobject_size

    result = dict(structs)
    for struct_name in set(overrides) | set(sizes):
        base = result.get(struct_name) or StructOffsets(struct_name, 0, {})
        result[struct_name] = base.with_offsets(overrides.get(struct_name, {}), sizes.get(struct_name))
    return result, tuple(mismatches)
