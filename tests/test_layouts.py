"""The construct declarations in layouts/ against the real interpreters.

* compiled offsets agree with what construct itself parses;
* the declarations equal the measurements committed in tests/data/offsets;
* for pyenv builds (which carry DWARF) the structs are re-measured with gdb now;
* for 3.13+ the target's own _Py_DebugOffsets, read from the binary, agree with the declaration.
"""
from __future__ import annotations

import glob
import json
import os
import random
import shutil
import struct
import subprocess
import sys

import pytest
from elftools.elf.elffile import ELFFile

from layouts import SUPPORTED_VERSIONS, get_layout, table_size, with_debug_offsets
from layouts.debug_offsets import DEBUG_OFFSETS

HERE = os.path.dirname(os.path.abspath(__file__))
OFFSETS = os.path.join(HERE, "data", "offsets")
GDB_SCRIPT = os.path.join(HERE, "tools", "gdb_offsets.py")


def _version_id(v):
    return "%d.%d" % v


#: Measured for the asyncio and __slots__ features, which the 2.7/3.6/3.7 layouts do not declare
#: yet (those versions show no slots in ``print``); for them only what they declare is compared.
NOT_YET_DECLARED_FOR_LEGACY = {"PyMemberDescrObject", "PyMemberDef", "_gc_runtime_state"}


def _compare(layout, measured):
    problems = []
    for struct_name, entry in measured.items():
        compiled = layout.structs.get(struct_name)
        if compiled is None:
            if layout.version < (3, 8) and struct_name in NOT_YET_DECLARED_FOR_LEGACY:
                continue
            problems.append("%s missing" % struct_name)
            continue
        if compiled.size != entry["size"]:
            problems.append("%s size %d != %d" % (struct_name, compiled.size, entry["size"]))
        for field, info in entry["fields"].items():
            if compiled.get(field) is None and layout.version < (3, 8):
                continue  # measured for a feature the legacy layouts do not declare yet
            if compiled.get(field) != info["offset"]:
                problems.append("%s.%s %s != %d" % (struct_name, field, compiled.get(field), info["offset"]))
    return problems


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS, ids=_version_id)
def test_compiled_offsets_agree_with_construct(version):
    layout = get_layout(version)
    rng = random.Random(1)
    for name, declaration in layout.declarations.items():
        size = declaration.sizeof()
        data = bytes(rng.randrange(256) for _ in range(size))
        parsed = declaration.parse(data)
        compiled = layout.structs[name]
        assert compiled.size == size
        for field_name, field in compiled.fields.items():
            if field.fmt is None:
                continue
            value = struct.unpack_from("<" + field.fmt, data, field.offset)[0]
            assert parsed[field_name] == value, (name, field_name)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS, ids=_version_id)
def test_declarations_equal_committed_measurements(version):
    with open(os.path.join(OFFSETS, "off_%d.%d.json" % version)) as f:
        measured = json.load(f)
    assert _compare(get_layout(version), measured) == []


@pytest.mark.parametrize("name,size", [("3.13", 584), ("3.14", 760), ("3.15", 888)])
def test_debug_offsets_table_sizes(name, size):
    assert table_size(name) == size == DEBUG_OFFSETS[name].sizeof()


def _runtime_file(interp_path):
    """The ELF file holding _PyRuntime: libpython for pyenv builds, else the executable."""
    real = os.path.realpath(interp_path)
    prefix = os.path.dirname(os.path.dirname(real))
    libs = sorted(glob.glob(os.path.join(prefix, "lib", "libpython[23]*.so.1.0")))
    return libs[0] if libs else real


def test_layouts_match_the_interpreter(python, tmp_path):
    version = tuple(int(x) for x in python.minor.split("."))
    layout = get_layout(version)
    path = _runtime_file(python.path)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(".PyRuntime")
        has_dwarf = elf.get_section_by_name(".debug_info") is not None
        runtime_bytes = section.data() if section is not None else None
    checked = False
    if layout.facts.debug_offsets:
        assert runtime_bytes is not None
        overlaid = with_debug_offsets(layout, runtime_bytes[:table_size(layout.facts.debug_offsets)])
        assert overlaid.mismatches == ()
        checked = True
    if has_dwarf and shutil.which("gdb"):
        out = tmp_path / "offsets.json"
        subprocess.run(["gdb", "-nx", "-batch", "-x", GDB_SCRIPT, path], check=True, timeout=300,
                       env=dict(os.environ, OFFSETS_OUT=str(out)), capture_output=True)
        measured = json.loads(out.read_text())
        assert _compare(layout, measured) == []
        checked = True
    if not checked:
        pytest.skip("%s has neither DWARF nor debug offsets to check against (stripped %s)" % (python.id, path))


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS, ids=_version_id)
def test_cached_compiled_layout_equals_the_declaration(version, tmp_path, monkeypatch):
    from snapshot import layoutcache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = layoutcache.load_layout(version)      # compiles and writes the cache
    second = layoutcache.load_layout(version)     # read back from the cache
    assert os.listdir(layoutcache.cache_dir())
    assert second.to_data() == first.to_data() == get_layout(version).to_data()


def test_warm_attach_path_does_not_import_construct(tmp_path):
    code = ("import sys; from snapshot import layoutcache; layoutcache.load_layout((3, 12)); "
            "import snapshot.target; print('construct' in sys.modules)")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    cwd = os.path.dirname(HERE)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True)   # fills the cache
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == "False"


@pytest.mark.parametrize("name", ["3.13", "3.14", "3.15"])
def test_struct_parser_agrees_with_the_construct_declaration(name):
    from layouts.debug_offsets import declaration, parse_debug_offsets
    data = bytes(random.Random(2).randrange(256) for _ in range(table_size(name)))
    by_construct = declaration(name).parse(data)
    by_struct = parse_debug_offsets(name, data)
    for group, value in by_struct.items():
        if isinstance(value, dict):
            assert {k: by_construct[group][k] for k in value} == dict(value)
        else:
            assert by_construct[group] == value


FACTS_PROBE = r'''
import json, sys, sysconfig, threading
class Plain(object):
    pass
class Slotted(object):
    __slots__ = ()
names = {}
def worker():
    try:
        with open("/proc/self/task/%d/comm" % threading.get_native_id()) as f:
            names["comm"] = f.read().strip()
    except (OSError, AttributeError):
        names["comm"] = None
t = threading.Thread(target=worker, name="facts-probe")
t.start(); t.join()
builtins = {"int": int, "list": list, "tuple": tuple, "bytes": bytes, "str": str, "dict": dict, "type": type,
            "BaseException": BaseException, "float": float, "object": object}
if sys.version_info[0] == 2:   # the types with 3.x's layouts: long, unicode, str (bytes); int is PyIntObject
    builtins.update(int=long, str=unicode, bytes=str, small_int=int)
int_info = getattr(sys, "int_info", None) or sys.long_info
print(json.dumps({
    "int_info": [int_info.bits_per_digit, int_info.sizeof_digit],
    "flags": {name: t.__flags__ for name, t in builtins.items()},
    "plain": Plain.__flags__, "slotted": Slotted.__flags__,
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "thread_comm": names["comm"],
}))
'''

#: TypeFlags field -> the builtin type that carries the bit (and only it, among the probed types).
_SUBCLASS_BITS = {"long_subclass": "int", "list_subclass": "list", "tuple_subclass": "tuple",
                  "bytes_subclass": "bytes", "unicode_subclass": "str", "dict_subclass": "dict",
                  "type_subclass": "type", "base_exc_subclass": "BaseException",
                  "int_subclass": "small_int"}


def test_facts_match_what_the_interpreter_says(python):
    """Each fact that the interpreter can observe about itself, compared with the layout's."""
    version = tuple(int(x) for x in python.minor.split("."))
    facts = get_layout(version).facts
    probe = json.loads(subprocess.run([python.path, "-c", FACTS_PROBE], capture_output=True, text=True,
                                      timeout=60, check=True).stdout)
    assert probe["int_info"] == [facts.ints.bits_per_digit, facts.ints.sizeof_digit]
    flags = facts.type_flags
    for field, owner in _SUBCLASS_BITS.items():
        bit = getattr(flags, field)
        if not bit:
            continue   # a flag this version lacks (int_subclass outside 2.7)
        for name, value in probe["flags"].items():
            assert bool(value & bit) == (name == owner), (field, name)
    assert probe["plain"] & flags.heaptype and not probe["flags"]["int"] & flags.heaptype
    if flags.managed_dict:
        assert probe["plain"] & flags.managed_dict and not probe["slotted"] & flags.managed_dict
    if flags.inline_values:
        assert probe["plain"] & flags.inline_values and not probe["slotted"] & flags.inline_values
    assert probe["free_threaded"] == facts.free_threaded
    assert (probe["thread_comm"] == "facts-probe") == facts.os_thread_names, probe["thread_comm"]


def test_facts_tables_cover_every_value():
    """Every fact value a layout declares has a strategy in the engine's tables."""
    from snapshot.objects import namespaces, values
    from snapshot.walk import linetable, walker
    for version in SUPPORTED_VERSIONS:
        facts = get_layout(version).facts
        assert facts.line_table in linetable.DECODERS
        assert facts.frames.model in walker._SETUP
        assert facts.ints.header in values._INT_HEADERS
        assert facts.dicts.keys in values._KEY_TABLES
        assert facts.dicts.values in values._VALUES_ARRAYS
        assert facts.dicts.instance in namespaces._INSTANCE_STORAGE
        assert facts.frames.entry_marker in ("every_frame", "is_entry_field", "above_shim")
        if facts.frames.entry_marker == "above_shim":
            assert facts.frames.entry_shim_owner in dict(facts.frames.owners).values()
            assert facts.frames.entry_shim_owner >= facts.frames.skip_owner_from
