"""The CFI machinery on synthetic bytes, and on real binaries with ``readelf -wF`` as the oracle.

readelf's interpreted frame table (``--debug-dump=frames-interp``) lists,
for every FDE, each row's location, CFA rule and register rules; our
``.eh_frame_hdr`` lookup and row evaluator must give the same rule at
every row location of every FDE sampled (all FDEs with expressions or a
signal-frame CIE, and an even sample of the rest).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from snapshot.native import cfi
from snapshot.native.cfi import (CFA_EXPRESSION, CFA_REGISTER, EXPRESSION, OFFSET, REGISTER, SAME_VALUE,
                                 UNDEFINED, VAL_EXPRESSION, VAL_OFFSET, Cie, Fde, evaluate_fde)
from snapshot.native.dwarfexpr import ExpressionError, evaluate
from snapshot.native.elf import ElfFile

NAMES = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp"] + ["r%d" % i for i in range(8, 16)] + ["ra"]


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


# -- the expression machine ------------------------------------------------------------------
PLT_CFA = bytes([0x77, 0x08, 0x80, 0x00, 0x3F, 0x1A, 0x3B, 0x2A, 0x33, 0x24, 0x22])


def test_plt_expression():
    """glibc/binutils PLT: CFA = rsp + 8 + (8 if (rip & 15) >= 11 else 0)."""
    regs = [0] * 17
    regs[7] = 0x1000
    for low, extra in ((0, 0), (10, 0), (11, 8), (15, 8)):
        regs[16] = 0x401020 + low
        assert evaluate(PLT_CFA, regs, lambda a, n: 0) == 0x1000 + 8 + extra


def test_signal_frame_expression_deref():
    """__restore_rt: CFA = *(rsp + 160), registers at rsp + N."""
    memory = {0x2000 + 160: 0x7777}
    regs = [None] * 17
    regs[7] = 0x2000
    load = lambda a, n: memory[a]  # noqa: E731
    assert evaluate(bytes([0x77]) + _sleb(160) + bytes([0x06]), regs, load) == 0x7777
    assert evaluate(bytes([0x77]) + _sleb(168), regs, load) == 0x2000 + 168


def test_expression_operations():
    regs = [None] * 17
    run = lambda code, *init: evaluate(bytes(code), regs, lambda a, n: 0, init)  # noqa: E731
    assert run([0x35, 0x33, 0x1C]) == 2                       # 5 - 3
    assert run([0x33, 0x35, 0x1C]) == (1 << 64) - 2           # wraps
    assert run([0x11]+list(_sleb(-4)) + [0x19]) == 4          # consts -4; abs
    assert run([0x37, 0x32, 0x1E]) == 14                      # mul
    assert run([0x37, 0x32, 0x25]) == 1                       # shr
    assert run([0x3F, 0x12, 0x21]) == 15                      # dup, or
    assert run([0x31, 0x32, 0x16, 0x1C]) == 1                 # swap then minus: 2 - 1
    assert run([0x31, 0x32, 0x14, 0x22, 0x22]) == 4           # over: 1 2 1 -> plus plus
    assert run([0x23, 0x10], 0x100) == 0x110                  # plus_uconst on the pushed CFA
    assert run([0x0B] + list((-2 & 0xFFFF).to_bytes(2, "little"))) == (1 << 64) - 2   # const2s
    # bra taken skips lit1 (one byte) and leaves lit2; bra not taken runs lit1
    assert run([0x31, 0x28, 0x01, 0x00, 0x31, 0x32]) == 2
    assert run([0x30, 0x28, 0x01, 0x00, 0x31]) == 1
    assert run([0x2F, 0x01, 0x00, 0x31, 0x32]) == 2           # skip over lit1
    assert run([0x33, 0x33, 0x29]) == 1 and run([0x33, 0x34, 0x2D]) == 1 and run([0x34, 0x33, 0x2B]) == 1


@pytest.mark.parametrize("code", [[0x1C], [0x50], [0xE0], [0x06], [0x2F, 0xFF, 0x7F]])
def test_expression_errors(code):
    regs = [None] * 17
    with pytest.raises(ExpressionError):
        evaluate(bytes(code), regs, lambda a, n: (_ for _ in ()).throw(ExpressionError("unreadable")))


def test_expression_needs_known_register():
    with pytest.raises(ExpressionError):
        evaluate(bytes([0x76, 0x00]), [None] * 17, lambda a, n: 0)


def test_expression_loop_is_bounded():
    with pytest.raises(ExpressionError):
        evaluate(bytes([0x2F, 0xFD, 0xFF]), [None] * 17, lambda a, n: 0)   # skip -3: back onto itself


# -- the row evaluator ---------------------------------------------------------------------------
def _cie(initial: bytes, signal=False) -> Cie:
    return Cie(1, -8, 16, 0x1B, 0xFF, True, signal, initial)


CIE_X86 = bytes([0x0C, 0x07, 0x08, 0x90, 0x01])   # def_cfa rsp+8; offset ra at cfa-8


def rows(instructions: bytes, start: int, pcs, cie=None):
    cie = cie or _cie(CIE_X86)
    fde = Fde(start, start + 0x1000, cie, instructions)
    return [evaluate_fde(fde, pc) for pc in pcs]


def rules(row):
    return {reg: (kind, arg) for reg, kind, arg in row[1]}


def test_rows_push_pop_and_remember_restore():
    code = bytes([
        0x41, 0x0E, 0x10, 0x86, 0x02,          # +1: cfa rsp+16; rbp at cfa-16
        0x43, 0x0D, 0x06,                      # +3: cfa register rbp
        0x0A,                                  # remember
        0x42, 0x0C, 0x07, 0x08, 0xC6,          # +2: cfa rsp+8; restore rbp (unsaved in the CIE)
        0x41, 0x0B,                            # +1: restore_state
        0x2E, 0x10,                            # GNU_args_size 16 (ignored)
    ])
    r0, r1, r4, r6, r7 = rows(code, 0x1000, [0x1000, 0x1001, 0x1004, 0x1006, 0x1007])
    assert r0[0] == (CFA_REGISTER, 7, 8) and rules(r0) == {16: (OFFSET, -8)}
    assert r1[0] == (CFA_REGISTER, 7, 16) and rules(r1)[6] == (OFFSET, -16)
    assert r4[0] == (CFA_REGISTER, 6, 16)
    assert r6[0] == (CFA_REGISTER, 7, 8) and 6 not in rules(r6)
    assert r7[0] == (CFA_REGISTER, 6, 16) and rules(r7)[6] == (OFFSET, -16)


def test_rows_every_rule_kind():
    expr = bytes([0x77, 0x08])
    code = (bytes([0x05]) + _uleb(3) + _uleb(2)                       # offset_extended rbx cfa-16
            + bytes([0x14]) + _uleb(12) + _uleb(1)                    # val_offset r12 = cfa-8
            + bytes([0x09, 13, 1])                                    # r13 in rdx
            + bytes([0x10, 14, len(expr)]) + expr                     # r14 at expression
            + bytes([0x16, 15, len(expr)]) + expr                     # r15 = expression
            + bytes([0x07, 0x00, 0x08, 0x02])                         # rax undefined, rcx same
            + bytes([0x11, 0x04]) + _sleb(-3)                         # offset_extended_sf rsi cfa+24
            + bytes([0x2F, 0x05]) + _uleb(2)                          # GNU_negative_offset_extended rdi
            + bytes([0x12, 0x07]) + _sleb(-4)                         # def_cfa_sf rsp, -4*-8 = 32
            + bytes([0x02, 0x10, 0x13]) + _sleb(-6)                   # advance_loc1 16; def_cfa_offset_sf 48
            + bytes([0x03, 0x00, 0x01, 0x06, 0x03])                   # advance_loc2 256; restore_extended rbx
            + bytes([0x04, 0x00, 0x00, 0x01, 0x00, 0x0F, len(expr)]) + expr)   # advance_loc4 64K; cfa expr
    first, second, third, fourth = rows(code, 0x1000, [0x1000, 0x1010, 0x1110, 0x11110])
    r = rules(first)
    assert first[0] == (CFA_REGISTER, 7, 32)
    assert r[3] == (OFFSET, -16) and r[12] == (VAL_OFFSET, -8) and r[13] == (REGISTER, 1)
    assert r[14] == (EXPRESSION, expr) and r[15] == (VAL_EXPRESSION, expr)
    assert r[0] == (UNDEFINED, 0) and r[2] == (SAME_VALUE, 0) and r[4] == (OFFSET, 24) and r[5] == (OFFSET, 16)
    assert second[0] == (CFA_REGISTER, 7, 48) and rules(second)[3] == (OFFSET, -16)
    assert 3 not in rules(third)
    assert fourth[0] == (CFA_EXPRESSION, expr)


def test_signal_augmentation_is_carried():
    (row,) = rows(b"", 0x1000, [0x1000], _cie(CIE_X86, signal=True))
    assert row[2] is True and row[3] == 16


def test_bad_instructions():
    with pytest.raises(cfi.CfiError):
        rows(bytes([0x3F]), 0x1000, [0x1000])             # unknown opcode
    with pytest.raises(cfi.CfiError):
        rows(bytes([0x0B]), 0x1000, [0x1000])             # restore_state without remember
    with pytest.raises(cfi.CfiError):
        rows(bytes([0x0C, 0x07]), 0x1000, [0x1000])       # truncated


# -- real binaries, readelf as the oracle ------------------------------------------------------------
_FDE = re.compile(r"^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)$")


def readelf_fdes(path):
    out = subprocess.run(["readelf", "-wF", path], capture_output=True, text=True, timeout=120).stdout
    fdes = []
    current = None
    header = None
    for line in out.splitlines():
        m = _FDE.match(line)
        if m:
            current = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "rows": []}
            fdes.append(current)
            header = None
            continue
        if re.match(r"^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ (CIE|ZERO)", line):
            current = None
        if current is None:
            continue
        if line.strip().startswith("LOC"):
            header = line.split()[2:]
            continue
        parts = line.split()
        if header and len(parts) == len(header) + 2 and re.match(r"^[0-9a-f]{8,16}$", parts[0]):
            current["rows"].append((int(parts[0], 16), parts[1], dict(zip(header, parts[2:]))))
    return fdes


def _show_cfa(cfa_rule):
    if cfa_rule[0] == CFA_EXPRESSION:
        return "exp"
    return "%s%+d" % (NAMES[cfa_rule[1]], cfa_rule[2])


def _show_rule(kind, arg):
    if kind == OFFSET:
        return "c%+d" % arg
    if kind == VAL_OFFSET:
        return "v%+d" % arg
    if kind == REGISTER:
        return NAMES[arg] if arg < len(NAMES) else "r%d" % arg
    if kind == EXPRESSION:
        return "exp"
    if kind == VAL_EXPRESSION:
        return "vexp"
    if kind == SAME_VALUE:
        return "s"
    return "u"


BINARIES = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11",
            os.path.expanduser("~/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"),
            os.path.expanduser("~/.cache/pyspy-repl/pythons/sid/usr/bin/python3.15")]


@pytest.mark.parametrize("path", BINARIES, ids=os.path.basename)
def test_rows_equal_readelf(path):
    if not os.path.exists(path):
        pytest.skip("%s not on this machine" % path)
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) not on PATH")
    fdes = readelf_fdes(path)
    assert len(fdes) > 100
    elf = ElfFile(path)
    eh = cfi.EhFrame(elf)
    assert eh.hdr_vaddr is not None, "expected an .eh_frame_hdr search table"
    special = [f for f in fdes if any(r[1] == "exp" or "exp" in r[2].values() for r in f["rows"])]
    step = max(1, len(fdes) // 400)
    sample = special + fdes[::step]
    problems = []
    for fde in sample:
        found = eh.find_fde(fde["start"])
        if found is None or (found.start, found.end) != (fde["start"], fde["end"]):
            problems.append("FDE for 0x%x: got %s" % (fde["start"], found and (hex(found.start), hex(found.end))))
            continue
        last = eh.find_fde(fde["end"] - 1)
        if last is None or last.start != fde["start"]:
            problems.append("FDE end 0x%x not found" % fde["end"])
        for loc, cfa_text, columns in fde["rows"]:
            row = eh.row_for(loc)
            ours = dict((NAMES[reg] if reg < len(NAMES) else "r%d" % reg, _show_rule(kind, arg))
                        for reg, kind, arg in row[1])
            if _show_cfa(row[0]) != cfa_text:
                problems.append("0x%x: CFA %s, readelf %s" % (loc, _show_cfa(row[0]), cfa_text))
            for column, text in columns.items():
                if ours.get(column, "u") != text:
                    problems.append("0x%x: %s %s, readelf %s" % (loc, column, ours.get(column, "u"), text))
    assert not problems, "\n".join(problems[:30])
    # Between FDEs (before the first one) there is no row.
    first = min(f["start"] for f in fdes)
    assert eh.row_for(first - 1) is None or eh.find_fde(first - 1).start < first
