"""Line-table decoding against each interpreter's own idea of line numbers."""
from __future__ import annotations

import json
import subprocess

from layouts import get_layout
from snapshot.walk.linetable import DECODERS

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
