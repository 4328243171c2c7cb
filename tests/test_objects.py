"""ObjectReader against real interpreters: every value's repr must equal the target's own repr().

Each interpreter found on the machine runs tests/targets/objects_target.py,
which prints ``{name: [id, repr]}``; we read every value from outside with
``ObjectReader(LiveProcess(pid), get_layout(version))``.  A missing
interpreter is skipped with the reason, never silently.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from layouts import get_layout  # noqa: E402
from snapshot.errors import CorruptDataError  # noqa: E402
from snapshot.process.image import ImageProcess  # noqa: E402
from snapshot.process.live import LiveProcess  # noqa: E402
from snapshot.objects import ObjectReader, cut  # noqa: E402

TARGET = os.path.join(ROOT, "tests", "targets", "objects_target.py")
PYENV = "/root/.pyenv/versions"
SID = "/root/.cache/pyspy-repl/pythons/bin"
INTERPRETERS = [
    ("2.7", PYENV + "/2.7.18/bin/python2.7"),
    ("3.6", PYENV + "/3.6.15/bin/python3.6"),
    ("3.7", PYENV + "/3.7.16/bin/python3.7"),
    ("3.8", PYENV + "/3.8.18/bin/python3.8"),
    ("3.9", PYENV + "/3.9.18/bin/python3.9"),
    ("3.10", PYENV + "/3.10.13/bin/python3.10"),
    ("3.11", PYENV + "/3.11.7/bin/python3.11"),
    ("3.11-debian", "/usr/bin/python3.11"),
    ("3.12", PYENV + "/3.12.1/bin/python3.12"),
    ("3.13", PYENV + "/3.13.0/bin/python3.13"),
    ("3.14", SID + "/python3.14"),
    ("3.15", SID + "/python3.15"),
]

# name prefix in the target -> ObjectReader.kind
KIND_BY_PREFIX = {
    "none": "none", "true": "bool", "false": "bool", "ellipsis": "other", "notimplemented": "other",
    "int": "int", "float": "float", "complex": "complex", "str": "str", "bytes": "bytes",
    "tuple": "tuple", "list": "list", "dict": "dict", "set": "set", "frozenset": "frozenset",
    "recursive": None, "instance": "instance", "function": "function", "type": "type",
    "module": "module", "cell": "cell",
}


class Target:
    def __init__(self, pid: int, values: dict, reader: ObjectReader):
        self.pid = pid
        self.values = values
        self.reader = reader
        self.extra = values.pop("_extra")
        self.version = tuple(values.pop("_version"))


@pytest.fixture(scope="module", params=[name for name, _ in INTERPRETERS])
def target(request):
    path = dict(INTERPRETERS)[request.param]
    if request.param.startswith("2."):
        pytest.skip("objects_target.py is Python 3 code; 2.7's values (int/long, str/unicode, old-style "
                    "instances, set([...])) are checked exactly by the dump e2e locals zoo "
                    "(tests/targets/py27/dump_target.py)")
    if not os.path.exists(path):
        pytest.skip("interpreter %s not installed at %s" % (request.param, path))
    proc = subprocess.Popen([path, "-u", TARGET], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail("target under %s printed nothing: %s" % (path, proc.stderr.read().decode()))
        values = json.loads(line)
        version = tuple(values["_version"][:2])
        reader = ObjectReader(LiveProcess(proc.pid), get_layout(version))
        yield Target(proc.pid, values, reader)
    finally:
        proc.kill()
        proc.wait()


def _kind_for(name: str):
    if name == "instance_object":
        return "other"  # object() is an instance of a static type
    return KIND_BY_PREFIX[name.split("_")[0]]


def test_reprs_match_cpython(target):
    mismatches = []
    for name, (addr, expected) in sorted(target.values.items()):
        got = target.reader.repr(addr, max_len=100_000)
        if got != expected:
            mismatches.append("%s: expected %r, got %r" % (name, expected, got))
    assert not mismatches, "\n".join(mismatches)


def test_kinds(target):
    wrong = []
    for name, (addr, _) in target.values.items():
        expected = _kind_for(name)
        if expected is not None and target.reader.kind(addr) != expected:
            wrong.append("%s: %s" % (name, target.reader.kind(addr)))
    assert not wrong
    inexact = target.extra["inexact"]
    assert target.reader.kind(inexact["custom_repr"][0]) == "instance"
    assert target.reader.kind(inexact["range"][0]) == "other"


def test_inexact_reprs_use_object_repr(target):
    inexact = target.extra["inexact"]
    addr = inexact["custom_repr"][0]
    assert target.reader.repr(addr) == "<__main__.WithRepr object at 0x%x>" % addr
    addr = inexact["range"][0]
    assert target.reader.repr(addr) == "<range object at 0x%x>" % addr


def test_scalar_values(target):
    r = target.reader
    v = target.values
    assert r.int_value(v["int_big"][0]) == 2 ** 200
    assert r.int_value(v["int_mbig"][0]) == -(2 ** 200)
    assert r.int_value(v["int_0"][0]) == 0
    assert r.int_value(v["true"][0]) == 1
    assert r.string(v["str_bmp"][0]) == "\xe9\u03a9\u4e2d\u6587"
    assert r.string(v["str_astral"][0]) == "\U0001f600 ok"
    assert r.string(v["str_surrogates"][0]) == "\ud83d\ude00"
    assert r.string(v["str_mystr"][0]) == "sub'class"  # a legacy (non-compact) str
    assert r.string(v["str_long"][0], 10) == "x" * 10
    assert r.bytes_value(v["bytes_all"][0]) == bytes(range(256))
    assert r.bytes_value(v["bytes_all"][0], 3) == b"\x00\x01\x02"
    with pytest.raises(CorruptDataError):
        r.string(v["int_1"][0])
    with pytest.raises(CorruptDataError):
        r.int_value(v["str_hello"][0])


def test_containers(target):
    r = target.reader
    v = target.values
    items = r.sequence_items(v["tuple_2"][0])
    assert [r.repr(a) for a in items] == ["1", "'a'"]
    assert len(r.sequence_items(v["list_mixed"][0], limit=3)) == 3
    pairs = r.dict_items(v["dict_big"][0])
    assert [r.string(k) for k, _ in pairs] == ["key%d" % i for i in range(200)]
    assert [r.int_value(val) for _, val in pairs] == list(range(200))
    assert len(r.dict_items(v["dict_big"][0], limit=5)) == 5
    deleted = r.dict_items(v["dict_deleted"][0])
    assert [r.string(k) for k, _ in deleted] == ["k%d" % i for i in range(20) if i % 3]
    assert sorted(r.int_value(a) for a in r.set_items(v["set_deleted"][0])) == list(range(1, 50, 2))


def test_dict_get(target):
    r = target.reader
    v = target.values
    assert r.int_value(r.dict_get(v["dict_str"][0], "a")) == 1
    assert r.dict_get(v["dict_str"][0], "zz") is None
    assert r.string(r.dict_get(v["dict_str"][0], "b")) == "two"   # past a key of the same length
    assert r.dict_get(v["dict_general"][0], 1) is not None
    assert r.string(r.dict_get(v["dict_general"][0], 1)) == "x"
    int_keyed, ids = target.extra["int_keyed"]
    assert r.dict_get(int_keyed, 10) == ids["10"]
    assert r.dict_get(int_keyed, 140000000000000) == ids["140000000000000"]
    assert r.dict_get(int_keyed, "10") == ids["'10'"]
    assert r.dict_get(int_keyed, 11) is None


@pytest.mark.parametrize("name", ["attrs_few", "attrs_many", "attrs_materialised", "attrs_deleted", "attrs_dictsub",
                                  "attrs_initialised"])
def test_instance_attributes(target, name):
    r = target.reader
    addr, expected = target.extra[name]
    assert r.instance_dict_items(addr) == list(expected.items())
    for attr, value_id in expected.items():
        assert r.getattr(addr, attr) == value_id
    assert r.getattr(addr, "missing") is None


def test_getattr_many_equals_getattr(target):
    """Many objects' attribute at once (thread names), with the key objects that matched or did
    not match once recognised by address: every answer is ``getattr``'s, a bad address is None."""
    r = target.reader
    names = ["attrs_few", "attrs_many", "attrs_materialised", "attrs_deleted", "attrs_dictsub", "attrs_initialised"]
    addrs = [target.extra[n][0] for n in names]
    attrs = {a for n in names for a in target.extra[n][1]} | {"missing"}
    for attr in sorted(attrs):
        many = r.getattr_many(addrs + [0x10], attr)
        assert many == {**{a: r.getattr(a, attr) for a in addrs}, 0x10: None}, attr


def test_module_and_type_attributes(target):
    r = target.reader
    addr, expected = target.extra["module_main"]
    for attr, value_id in expected.items():
        assert r.getattr(addr, attr) == value_id
    plain = expected["Plain"]
    assert r.repr(r.getattr(plain, "__module__")) == "'__main__'"


def test_type_names(target):
    r = target.reader
    v = target.values
    inner = v["type_inner"][0]
    assert r.type_qualname_and_module(inner) == ("Outer.Inner", "__main__")
    assert r.type_name(inner) == "Inner"
    assert r.type_qualname_and_module(v["type_int"][0]) == ("int", "builtins")
    assert r.type_qualname_and_module(v["type_ordered"][0]) == ("OrderedDict", "collections")
    assert r.type_name(r.type_addr(v["dict_mydict"][0])) == "MyDict"
    assert r.type_addr(v["instance_inner"][0]) == inner


def test_huge_int(target):
    r = target.reader
    addr = target.extra["huge_int"]
    value = 7 ** 20000
    assert r.int_value(addr) == value
    text = r.repr(addr, max_len=10 ** 6)
    assert len(text) == 16902 and text[:40] == "%d" % (value // 10 ** (16902 - 40))
    assert text[-3000:] == str(value % 10 ** 3000).zfill(3000)
    short = r.repr(addr, max_len=30)
    assert short == text[:27] + "..."


def test_max_len_cut(target):
    r = target.reader
    v = target.values
    for name in ("dict_big", "str_long", "bytes_all", "int_big", "list_mixed", "recursive_dict"):
        addr, full = v[name]
        for max_len in (4, 10, 31, 100):
            assert r.repr(addr, max_len=max_len) == cut(full, max_len), (name, max_len)
    assert cut("abcdefgh", 6) == "abc..."
    assert len(r.repr(v["dict_big"][0], max_len=50)) == 50


def test_depth_cap(target):
    r = target.reader
    addr, full = target.values["list_nested"]  # [[[[1, [2]]]]]
    assert r.repr(addr, depth=10) == full
    assert r.repr(addr, depth=2) == "[[...]]"
    assert r.repr(addr, depth=4) == "[[[[1, ...]]]]"
    assert r.repr(addr, depth=0) == "..."
    addr, full = target.values["list_mixed"]
    assert r.repr(addr, depth=1) == "[1, 'a', None, 2.5, b'x', ..., ...]"


def test_held_heads_decode_as_the_generic_path_does(target):
    """``string``/``bytes_value`` over held heads (the fast path for the exact ``str``/``bytes``
    types) give what the generic path gives, for every str and bytes of the target, subclasses,
    non-ASCII and cut ones included; and the fast path is really taken for ASCII ones."""
    r = target.reader
    names = sorted(n for n in target.values if n.startswith(("str_", "bytes_")))
    addrs = [target.values[n][0] for n in names]

    def read_all():
        out = {}
        for name, addr in zip(names, addrs):
            read = r.string if name.startswith("str_") else r.bytes_value
            out[name] = [read(addr, cap) for cap in (0, 3, 100_000)]
        return out

    generic = read_all()   # nothing held: the generic path (and the exact types learned)
    assert generic["str_hello"][2] == "hello" and generic["bytes_all"][2] == bytes(range(256))
    assert r._exact_str and r._exact_bytes
    r.hold_heads(addrs, 1024)
    try:
        assert read_all() == generic
        # the fast path ran: a str read with its type lookup failing still decodes from the head
        real_info, r._info_of = r._info_of, None
        try:
            assert r.string(target.values["str_hello"][0]) == "hello"
            assert r.bytes_value(target.values["bytes_abc"][0]) == b"abc"
        finally:
            r._info_of = real_info
    finally:
        r.release_heads()


def test_held_heads_of_garbage_take_the_checked_path():
    """A held head of the learned str type whose state is not compact ASCII, or whose length is
    negative or runs past the head, is judged by the generic path: a typed error, never a
    slice of garbage."""
    layout = get_layout((3, 12))
    A, facts = layout.PyASCIIObject, layout.facts
    ob_type, length_at, state_at = layout.PyObject.ob_type, A.length, A.state
    str_type, meta = 0x2000, 0x2400
    image = bytearray(0x3000)

    def put(at, value, size=8, signed=False):
        image[at - 0x1000:at - 0x1000 + size] = value.to_bytes(size, "little", signed=signed)

    T = layout.PyTypeObject
    put(str_type + ob_type, meta)
    put(meta + ob_type, meta)
    put(meta + T.tp_flags, facts.type_flags.type_subclass)
    put(str_type + T.tp_flags, facts.type_flags.unicode_subclass)
    put(str_type + T.tp_name, 0x2800)
    image[0x2800 - 0x1000:0x2804 - 0x1000] = b"str\0"
    ascii_state = (1 << facts.unicode_kind_shift) | (1 << facts.unicode_compact_bit) | (1 << facts.unicode_ascii_bit)

    def obj(at, length, state, text=b""):
        put(at + ob_type, str_type)
        put(at + length_at, length, signed=True)
        put(at + state_at, state, size=4)
        image[at - 0x1000 + A.size:at - 0x1000 + A.size + len(text)] = text

    good, bad_state, negative, too_long = 0x1000, 0x1100, 0x1200, 0x1300
    obj(good, 5, ascii_state, b"hello")
    obj(bad_state, 5, 7 << facts.unicode_kind_shift, b"hello")      # kind 7: no such kind
    obj(negative, -1, ascii_state)
    obj(too_long, 1 << 45, ascii_state)
    reader = ObjectReader(ImageProcess({0x1000: bytes(image)}), layout)
    assert reader.string(good) == "hello"      # generic: learns the type
    assert reader._exact_str == str_type
    reader.hold_heads([good, bad_state, negative, too_long], 64)
    try:
        assert reader.string(good) == "hello"
        for addr in (bad_state, negative, too_long):
            with pytest.raises(CorruptDataError):
                reader.string(addr)
    finally:
        reader.release_heads()


def test_garbage_raises_corrupt():
    layout = get_layout((3, 12))
    # A "type" whose own type is not a metatype, and an object pointing at unmapped memory.
    image = bytearray(4096)
    image[8:16] = (0x1000 + 64).to_bytes(8, "little")   # object at 0x1000 -> type at 0x1040
    image[64 + 8:64 + 16] = (0x1000 + 2048).to_bytes(8, "little")  # its metatype: all zeros
    reader = ObjectReader(ImageProcess({0x1000: bytes(image)}), layout)
    with pytest.raises(CorruptDataError):
        reader.repr(0x1000)
    with pytest.raises(CorruptDataError):
        reader.repr(0x7000)
    with pytest.raises(CorruptDataError):
        reader.kind(0x1003)


def test_interior_pointers_raise_corrupt_or_render(target):
    """Pointers into the middle of objects are garbage: CorruptDataError or some text, fast, never a hang."""
    import time
    r = target.reader
    started = time.monotonic()
    for addr, _ in list(target.values.values())[::3]:
        for words in range(1, 24):
            try:
                assert isinstance(r.repr(addr + 8 * words, max_len=200), str)
                r.instance_dict_items(addr + 8 * words)
            except CorruptDataError:
                pass
    assert time.monotonic() - started < 30


class _Holes:
    """A memory source where some objects cannot be read (freed or unmapped)."""

    def __init__(self, memory, holes):
        self.memory = memory
        self.holes = set(holes)
        self.pid = memory.pid

    def _hit(self, address, size):
        return any(address <= h < address + max(size, 1) for h in self.holes)

    def read(self, address, size):
        if self._hit(address, size):
            from snapshot.errors import MemoryReadError
            raise MemoryReadError(address, size, "hole")
        return self.memory.read(address, size)

    def read_many(self, requests):
        return [None if self._hit(a, s) else d for (a, s), d in zip(requests, self.memory.read_many(requests))]

    def maps(self):
        return self.memory.maps()


@pytest.mark.parametrize("name", ["list_mixed", "tuple_2", "dict_str"])
def test_one_unreadable_element_shows_invalid(target, name):
    r = target.reader
    addr, _ = target.values[name]
    if name == "dict_str":
        pairs = r.dict_items(addr)
        bad = pairs[0][1]
        holed = ObjectReader(_Holes(r.memory, [bad]), r.layout)
        parts = ["%s: %s" % (r.repr(k), "<invalid object at 0x%x>" % bad if v == bad else r.repr(v)) for k, v in pairs]
        assert holed.repr(addr, max_len=100_000) == "{" + ", ".join(parts) + "}"
        return
    items = r.sequence_items(addr)
    bad = items[1]
    holed = ObjectReader(_Holes(r.memory, [bad]), r.layout)
    parts = ["<invalid object at 0x%x>" % a if a == bad else r.repr(a) for a in items]
    open_, close = ("[", "]") if r.kind(addr) == "list" else ("(", ")")
    assert holed.repr(addr, max_len=100_000) == open_ + ", ".join(parts) + close
