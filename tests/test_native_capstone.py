"""capstone CFA recovery on hand-assembled x86-64 code, and the ``disas`` listing."""
from __future__ import annotations

import pytest

pytest.importorskip("capstone")

from snapshot.native import disasm  # noqa: E402
from snapshot.native.cfi import CFA_REGISTER, OFFSET  # noqa: E402

# push rbp; mov rbp,rsp; push rbx; sub rsp,0x18; call +0; add rsp,0x18; pop rbx; pop rbp; ret
FRAMED = bytes.fromhex("55" "4889e5" "53" "4883ec18" "e800000000" "4883c418" "5b" "5d" "c3")
# endbr64; sub rsp,8; call rcx; add rsp,8; ret   (CPython's perf trampoline)
TRAMPOLINE = bytes.fromhex("f30f1efa" "4883ec08" "ffd1" "4883c408" "c3")
# push r12; push rbx; sub rsp,0x28; call +0; add rsp,0x28; pop rbx; pop r12; ret  (no frame pointer)
NOFP = bytes.fromhex("4154" "53" "4883ec28" "e800000000" "4883c428" "5b" "415c" "c3")
BASE = 0x400000


def cfa(row):
    return row[0]


def saved(row):
    return {reg: (kind, arg) for reg, kind, arg in row[1]}


def test_prologue_framed():
    assert cfa(disasm.row_from_prologue(FRAMED, BASE, BASE)) == (CFA_REGISTER, 7, 8)
    assert cfa(disasm.row_from_prologue(FRAMED, BASE, BASE + 1)) == (CFA_REGISTER, 7, 16)
    row = disasm.row_from_prologue(FRAMED, BASE, BASE + 4)        # after mov rbp, rsp
    assert cfa(row) == (CFA_REGISTER, 6, 16) and saved(row)[6] == (OFFSET, -16)
    row = disasm.row_from_prologue(FRAMED, BASE, BASE + 14)       # after the call (its return address)
    assert cfa(row) == (CFA_REGISTER, 6, 16) and saved(row)[3] == (OFFSET, -24) and saved(row)[16] == (OFFSET, -8)


def test_prologue_without_frame_pointer():
    row = disasm.row_from_prologue(NOFP, BASE, BASE + 12)         # after the call
    assert cfa(row) == (CFA_REGISTER, 7, 8 + 16 + 0x28)
    assert saved(row)[12] == (OFFSET, -16) and saved(row)[3] == (OFFSET, -24)


def test_epilogue_scan_matches_prologue():
    # the return address inside the trampoline: after "call rcx"
    row = disasm.row_from_epilogue(TRAMPOLINE[10:], BASE + 10)
    assert cfa(row) == (CFA_REGISTER, 7, 16)
    row = disasm.row_from_epilogue(NOFP[12:], BASE + 12)
    assert cfa(row) == (CFA_REGISTER, 7, 8 + 16 + 0x28)
    assert saved(row)[3] == (OFFSET, -24) and saved(row)[12] == (OFFSET, -16)
    row = disasm.row_from_epilogue(FRAMED[14:], BASE + 14)        # "leave"-free: add, pop, pop, ret
    assert cfa(row) == (CFA_REGISTER, 7, 8 + 8 + 8 + 0x18)


def test_epilogue_with_leave_and_jumps():
    # jmp +2 over two garbage bytes; leave; ret
    code = bytes.fromhex("eb02" "0f0b" "c9" "c3")
    row = disasm.row_from_epilogue(code, BASE)
    assert cfa(row) == (CFA_REGISTER, 6, 16) and saved(row)[6] == (OFFSET, -16)


def test_unrecoverable():
    assert disasm.row_from_epilogue(bytes.fromhex("0f0b"), BASE) is None        # ud2
    assert disasm.row_from_epilogue(bytes.fromhex("4889c4c3"), BASE) is None    # mov rsp, rax
    assert disasm.row_from_prologue(bytes.fromhex("4889c4" "90"), BASE, BASE + 3) is None


def test_recover_row_prefers_prologue_and_falls_back():
    code = {BASE: TRAMPOLINE}

    def read(address, size):
        for start, data in code.items():
            if start <= address < start + len(data):
                return data[address - start:address - start + size]
        return None
    assert cfa(disasm.recover_row(read, BASE + 10, BASE)) == (CFA_REGISTER, 7, 16)
    assert cfa(disasm.recover_row(read, BASE + 10, None)) == (CFA_REGISTER, 7, 16)


def test_disassemble_listing_with_symbols():
    def read(address, size):
        offset = address - BASE
        return FRAMED[offset:offset + size] if 0 <= offset < len(FRAMED) else None

    def symbolize(address):
        return ("framed", address - BASE) if BASE <= address < BASE + len(FRAMED) else (None, 0)
    listing = disasm.disassemble(read, BASE + 9, 6, symbolize, function_start=BASE)
    assert [i.address - BASE for i in listing] == [1, 4, 5, 9, 14, 18]
    current = [i for i in listing if i.is_current]
    assert len(current) == 1 and current[0].mnemonic == "call" and current[0].location == "framed+0x9"
    lines = disasm.format_listing(listing)
    assert lines[3].startswith("=> 0x0000000000400009 <framed+0x9>: call")
    assert "<framed+0x1>: mov " in lines[0]
    # unknown function start: the listing begins at the address
    listing = disasm.disassemble(read, BASE + 9, 3, symbolize)
    assert listing[0].is_current and len(listing) == 3
