"""Line-table decoding against each interpreter's own idea of line numbers."""
from __future__ import annotations

import json
import subprocess

import pytest

from layouts import get_layout
from snapshot.hostcompat import LOCATIONS_IN_C
from snapshot.walk.linetable import DECODERS, _locations_in_c, decode_locations_in_python

# Runs inside the target interpreter: for a few code objects, the raw table and
# the line of every instruction offset as the interpreter itself computes it.
PROBE = r'''
import binascii, dis, json, sys
def sample(a, b):
    x = [i * 2
         for i in range(a)
         if i % 3]
    try:
        y = {k: v for k, v in
             zip(x, x)}
    except Exception:
        y = None
    while b > 0:
        b -= 1
        if b == 5:
            break
    return (x,
            y,
            lambda q: q + 1)
codes = []
def walk(co):
    codes.append(co)
    for c in co.co_consts:
        if hasattr(c, "co_code"):
            walk(c)
walk(sample.__code__)
import threading
for module in (dis, threading):   # 2.7's dis alone has too few code objects
    source_path = module.__file__[:-1] if module.__file__.endswith(".pyc") else module.__file__   # 2.7: .pyc
    walk(compile(open(source_path).read(), source_path, "exec"))
out = []
for co in codes[:400]:
    if sys.version_info >= (3, 10):
        table = co.co_linetable
        lines = []
        for start, end, line in co.co_lines():
            for off in range(start, end, 2):
                lines.append((off, line))
    else:
        table = co.co_lnotab
        starts = list(dis.findlinestarts(co))
        lines = []
        for off in range(0, len(co.co_code), 2):
            line = co.co_firstlineno
            for s, l in starts:
                if s <= off:
                    line = l
            lines.append((off, line))
    out.append({"table": binascii.hexlify(table).decode("ascii"), "first": co.co_firstlineno, "lines": lines})
print(json.dumps(out))
'''


def test_line_tables(python):
    version = tuple(int(x) for x in python.minor.split("."))
    decoder = DECODERS[get_layout(version).facts.line_table]
    result = subprocess.run([python.path, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    codes = json.loads(result.stdout)
    assert len(codes) > 20
    checked = 0
    for entry in codes:
        table = decoder(bytes.fromhex(entry["table"]), entry["first"])
        for offset, line in entry["lines"]:
            if line is None:
                continue
            assert table.line_for(offset) == line, (entry["first"], offset)
            checked += 1
    assert checked > 1000


def test_partial_decoding_gives_the_same_lines(python):
    """``until``: decoding stops at the range holding that offset and still answers it as the
    whole table does; an offset past the decoded part is said not to be covered (the code
    cache then decodes it all), and the first question of a ``CodeInfo`` works either way."""
    version = tuple(int(x) for x in python.minor.split("."))
    decoder = DECODERS[get_layout(version).facts.line_table]
    if decoder is DECODERS["locations"]:
        decoder = decode_locations_in_python  # (the table read in C is always whole)
    result = subprocess.run([python.path, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    checked = partial = 0
    for entry in json.loads(result.stdout):
        raw = bytes.fromhex(entry["table"])
        whole = decoder(raw, entry["first"])
        assert whole.complete
        offsets = [offset for offset, line in entry["lines"] if line is not None]
        for offset in offsets[::7] + offsets[-1:]:
            head = decoder(raw, entry["first"], until=offset)
            assert head.covers(offset)
            assert head.line_for(offset) == whole.line_for(offset), (entry["first"], offset)
            if not head.complete:
                partial += 1
                past = head.ends[-1]
                assert not head.covers(past) and len(head.starts) < len(whole.starts)
            checked += 1
    assert checked > 100 and partial > 50, (checked, partial)


def test_tables_read_in_c_and_in_python_agree(python):
    """3.11+ tables on a 3.11+ host are read by the host's ``co_lines()``: the same line for
    every instruction as the decoder in Python, for each target version's tables."""
    version = tuple(int(x) for x in python.minor.split("."))
    if get_layout(version).facts.line_table != "locations":
        pytest.skip("Python %s has no location tables (3.11+)" % python.minor)
    if not LOCATIONS_IN_C:
        pytest.skip("this host Python (before 3.11) reads location tables in Python only")
    result = subprocess.run([python.path, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    checked = 0
    for entry in json.loads(result.stdout):
        raw = bytes.fromhex(entry["table"])
        size = 2 * len(entry["lines"])
        in_c = _locations_in_c(raw, entry["first"], size)
        assert in_c is not None and in_c.complete
        in_python = decode_locations_in_python(raw, entry["first"], size)
        for offset in range(0, size, 2):
            assert in_c.line_for(offset) == in_python.line_for(offset), (entry["first"], offset)
            checked += 1
    assert checked > 1000


def test_garbage_tables_read_in_c_stay_bounded():
    """Remote tables are untrusted: what the C reading is given is checked or harmless."""
    if not LOCATIONS_IN_C:
        pytest.skip("this host Python (before 3.11) reads location tables in Python only")
    import random
    rng = random.Random(7)
    assert _locations_in_c(b"\x01\x02", 1, 4) is None            # no entry starts there
    assert _locations_in_c(b"", 1, 4) is None
    assert _locations_in_c(b"\x80\x00", 1, 3) is None            # odd code size
    assert _locations_in_c(b"\x80\x00", 1, 1 << 40) is None      # code too big to stand in for
    for _ in range(2000):
        table = bytes([0x80 | rng.randrange(128)]) + bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        size = 2 * rng.randrange(1, 64)
        found = _locations_in_c(table, rng.randrange(-5, 1 << 20), size)
        if found is not None:
            assert len(found.ends) <= len(table)
            for offset in range(0, size, 2):
                found.line_for(offset)
