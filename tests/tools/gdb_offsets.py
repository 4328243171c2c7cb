"""Measure CPython struct layouts from a binary's DWARF with gdb.

Run inside gdb (``gdb -nx -batch -x gdb_offsets.py BINARY``) with the
environment variable ``OFFSETS_OUT`` naming the JSON file to write.  The
result feeds ``gen_layouts.py`` (which writes ``layouts/v3_X.py``) and the
layout cross-check test, so the declarations are measured, never guessed.
"""
import json
import os

import gdb  # type: ignore  # only inside gdb

# struct name -> (C type expression, [(our field name, C member path), ...])
WANTED = {
    "_PyRuntimeState": ("_PyRuntimeState", [
        ("interpreters_head", "interpreters.head"),
        ("interpreters_main", "interpreters.main"),
        ("gilstate_tstate_current", "gilstate.tstate_current"),
        ("ceval_gil", "ceval.gil"),
        ("debug_offsets", "debug_offsets"),
        ("gc_collecting", "gc.collecting"),
    ]),
    "PyInterpreterState": ("PyInterpreterState", [
        ("next", "next"),
        ("tstate_head", "tstate_head"),
        ("threads_head", "threads.head"),
        ("threads_main", "threads.main"),
        ("id", "id"),
        ("modules", "modules"),
        ("imports_modules", "imports.modules"),
        ("sysdict", "sysdict"),
        ("builtins", "builtins"),
        ("ceval_gil", "ceval.gil"),
        ("_gil", "_gil"),
        ("gc_collecting", "gc.collecting"),
    ]),
    "_gil_runtime_state": ("struct _gil_runtime_state", [
        ("interval", "interval"),
        ("last_holder", "last_holder"),
        ("locked", "locked"),
        ("switch_number", "switch_number"),
    ]),
    "PyThreadState": ("PyThreadState", [
        ("prev", "prev"),
        ("next", "next"),
        ("interp", "interp"),
        ("frame", "frame"),
        ("cframe", "cframe"),
        ("current_frame", "current_frame"),
        ("_status", "_status"),
        ("state", "state"),
        ("holds_gil", "holds_gil"),
        ("gil_requested", "gil_requested"),
        ("thread_id", "thread_id"),
        ("native_thread_id", "native_thread_id"),
        ("datastack_chunk", "datastack_chunk"),
        ("base_frame", "base_frame"),
        ("current_exception", "current_exception"),
        ("exc_info", "exc_info"),
        ("exc_state", "exc_state"),
        ("exc_value", "exc_value"),   # 2.7/3.6: the handled exception, in the thread state itself
    ]),
    "_PyErr_StackItem": ("_PyErr_StackItem", [
        ("exc_type", "exc_type"),
        ("exc_value", "exc_value"),
        ("previous_item", "previous_item"),
    ]),
    "PyBaseExceptionObject": ("PyBaseExceptionObject", [
        ("args", "args"),
    ]),
    "PyMemberDescrObject": ("PyMemberDescrObject", [
        ("d_type", "d_common.d_type"),
        ("d_name", "d_common.d_name"),
        ("d_member", "d_member"),
    ]),
    "PyMemberDef": ("PyMemberDef", [
        ("name", "name"),
        ("type", "type"),
        ("offset", "offset"),
        ("flags", "flags"),
    ]),
    "_PyCFrame": ("_PyCFrame", [
        ("current_frame", "current_frame"),
    ]),
    "PyFrameObject": ("PyFrameObject", [
        ("f_back", "f_back"),
        ("f_code", "f_code"),
        ("f_lasti", "f_lasti"),
        ("f_lineno", "f_lineno"),
        ("f_gen", "f_gen"),
        ("f_globals", "f_globals"),
        ("f_localsplus", "f_localsplus"),
        ("f_frame", "f_frame"),
        ("f_valuestack", "f_valuestack"),
        ("f_stacktop", "f_stacktop"),
        ("f_stackdepth", "f_stackdepth"),
    ]),
    "_PyInterpreterFrame": ("struct _PyInterpreterFrame", [
        ("f_code", "f_code"),
        ("f_executable", "f_executable"),
        ("previous", "previous"),
        ("f_func", "f_func"),
        ("f_funcobj", "f_funcobj"),
        ("f_globals", "f_globals"),
        ("prev_instr", "prev_instr"),
        ("instr_ptr", "instr_ptr"),
        ("stacktop", "stacktop"),
        ("stackpointer", "stackpointer"),
        ("is_entry", "is_entry"),
        ("owner", "owner"),
        ("localsplus", "localsplus"),
    ]),
    "_PyStackChunk": ("_PyStackChunk", [
        ("previous", "previous"),
        ("size", "size"),
        ("top", "top"),
        ("data", "data"),
    ]),
    "PyCodeObject": ("PyCodeObject", [
        ("co_argcount", "co_argcount"),
        ("co_posonlyargcount", "co_posonlyargcount"),
        ("co_kwonlyargcount", "co_kwonlyargcount"),
        ("co_nlocals", "co_nlocals"),
        ("co_flags", "co_flags"),
        ("co_firstlineno", "co_firstlineno"),
        ("co_code", "co_code"),
        ("co_varnames", "co_varnames"),
        ("co_cellvars", "co_cellvars"),
        ("co_freevars", "co_freevars"),
        ("co_cell2arg", "co_cell2arg"),
        ("co_localsplusnames", "co_localsplusnames"),
        ("co_localspluskinds", "co_localspluskinds"),
        ("co_nlocalsplus", "co_nlocalsplus"),
        ("co_filename", "co_filename"),
        ("co_name", "co_name"),
        ("co_qualname", "co_qualname"),
        ("co_lnotab", "co_lnotab"),
        ("co_linetable", "co_linetable"),
        ("co_code_adaptive", "co_code_adaptive"),
    ]),
    "PyObject": ("PyObject", [
        ("ob_refcnt", "ob_refcnt"),
        ("ob_type", "ob_type"),
    ]),
    "PyVarObject": ("PyVarObject", [
        ("ob_size", "ob_size"),
    ]),
    "PyTypeObject": ("PyTypeObject", [
        ("tp_name", "tp_name"),
        ("tp_basicsize", "tp_basicsize"),
        ("tp_itemsize", "tp_itemsize"),
        ("tp_repr", "tp_repr"),
        ("tp_flags", "tp_flags"),
        ("tp_base", "tp_base"),
        ("tp_dict", "tp_dict"),
        ("tp_dictoffset", "tp_dictoffset"),
        ("tp_mro", "tp_mro"),
    ]),
    "PyHeapTypeObject": ("PyHeapTypeObject", [
        ("ht_name", "ht_name"),
        ("ht_qualname", "ht_qualname"),
        ("ht_cached_keys", "ht_cached_keys"),
        ("ht_module", "ht_module"),
    ]),
    "PyASCIIObject": ("PyASCIIObject", [
        ("length", "length"),
        ("hash", "hash"),
        ("state", "state"),
    ]),
    "PyCompactUnicodeObject": ("PyCompactUnicodeObject", [
        ("utf8_length", "utf8_length"),
        ("utf8", "utf8"),
    ]),
    "PyUnicodeObject": ("PyUnicodeObject", [
        ("data", "data"),
        # 2.7: a separate Py_UNICODE buffer (UCS2 or UCS4 by build)
        ("length", "length"),
        ("str", "str"),
    ]),
    # 2.7 only: str, int and old-style classes and instances
    "PyStringObject": ("PyStringObject", [
        ("ob_shash", "ob_shash"),
        ("ob_sstate", "ob_sstate"),
        ("ob_sval", "ob_sval"),
    ]),
    "PyIntObject": ("PyIntObject", [
        ("ob_ival", "ob_ival"),
    ]),
    "PyClassObject": ("PyClassObject", [
        ("cl_bases", "cl_bases"),
        ("cl_dict", "cl_dict"),
        ("cl_name", "cl_name"),
    ]),
    "PyInstanceObject": ("PyInstanceObject", [
        ("in_class", "in_class"),
        ("in_dict", "in_dict"),
    ]),
    "PyBytesObject": ("PyBytesObject", [
        ("ob_sval", "ob_sval"),
    ]),
    "PyLongObject": ("PyLongObject", [
        ("ob_digit", "ob_digit"),
        ("lv_tag", "long_value.lv_tag"),
        ("long_value_ob_digit", "long_value.ob_digit"),
    ]),
    "PyFloatObject": ("PyFloatObject", [
        ("ob_fval", "ob_fval"),
    ]),
    "PyComplexObject": ("PyComplexObject", [
        ("cval", "cval"),
    ]),
    "PyTupleObject": ("PyTupleObject", [
        ("ob_item", "ob_item"),
    ]),
    "PyListObject": ("PyListObject", [
        ("ob_item", "ob_item"),
        ("allocated", "allocated"),
    ]),
    "PyDictObject": ("PyDictObject", [
        ("ma_fill", "ma_fill"),
        ("ma_mask", "ma_mask"),
        ("ma_table", "ma_table"),
        ("ma_used", "ma_used"),
        ("ma_keys", "ma_keys"),
        ("ma_values", "ma_values"),
    ]),
    "PyDictKeysObject": ("PyDictKeysObject", [
        ("dk_size", "dk_size"),
        ("dk_log2_size", "dk_log2_size"),
        ("dk_log2_index_bytes", "dk_log2_index_bytes"),
        ("dk_kind", "dk_kind"),
        ("dk_nentries", "dk_nentries"),
        ("dk_indices", "dk_indices"),
    ]),
    "PyDictKeyEntry": ("PyDictKeyEntry", [
        ("me_hash", "me_hash"),
        ("me_key", "me_key"),
        ("me_value", "me_value"),
    ]),
    "PyDictEntry": ("PyDictEntry", [   # 2.7: the open-addressing table's entries
        ("me_hash", "me_hash"),
        ("me_key", "me_key"),
        ("me_value", "me_value"),
    ]),
    "PyDictUnicodeEntry": ("PyDictUnicodeEntry", [
        ("me_key", "me_key"),
        ("me_value", "me_value"),
    ]),
    "PyDictValues": ("PyDictValues", [
        ("values", "values"),
    ]),
    "PySetObject": ("PySetObject", [
        ("fill", "fill"),
        ("used", "used"),
        ("mask", "mask"),
        ("table", "table"),
    ]),
    "setentry": ("setentry", [
        ("key", "key"),
        ("hash", "hash"),
    ]),
    "PyCellObject": ("PyCellObject", [
        ("ob_ref", "ob_ref"),
    ]),
    "PyFunctionObject": ("PyFunctionObject", [
        ("func_code", "func_code"),
        ("func_globals", "func_globals"),
        ("func_name", "func_name"),
        ("func_qualname", "func_qualname"),
        ("func_module", "func_module"),
    ]),
    "PyModuleObject": ("PyModuleObject", [
        ("md_dict", "md_dict"),
        ("md_name", "md_name"),
    ]),
    "PyGenObject": ("PyGenObject", [
        ("gi_frame", "gi_frame"),
        ("gi_iframe", "gi_iframe"),
        ("gi_name", "gi_name"),
        ("gi_qualname", "gi_qualname"),
        ("gi_frame_state", "gi_frame_state"),
    ]),
}


def _evaluate(expr):
    try:
        return int(gdb.parse_and_eval(expr))
    except gdb.error:
        return None


def _field_type(ctype, path):
    try:
        value = gdb.parse_and_eval("((%s *)0)->%s" % (ctype, path))
        t = value.type.strip_typedefs()
        try:
            signed = t.is_signed
        except (AttributeError, ValueError):
            signed = None
        return str(value.type), t.sizeof, t.code == gdb.TYPE_CODE_PTR, signed
    except gdb.error:
        return None


def main():
    out = {}
    for name, (ctype, fields) in WANTED.items():
        size = _evaluate("sizeof(%s)" % ctype)
        if size is None:
            continue
        measured = {}
        for our_name, path in fields:
            offset = _evaluate("(long)&((%s *)0)->%s" % (ctype, path))
            if offset is None:
                continue
            info = _field_type(ctype, path)
            measured[our_name] = {"offset": offset, "ctype": info[0], "size": info[1],
                                  "pointer": info[2], "signed": info[3]}
        out[name] = {"size": size, "fields": measured}
    with open(os.environ["OFFSETS_OUT"], "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


main()
