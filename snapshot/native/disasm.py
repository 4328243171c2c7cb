"""capstone where call frame information is missing, and instruction listings for ``disas``.

Code without CFI: CPython 3.12+ perf trampolines (``-X perf``) in anonymous
memory, hand-written assembly and PLT stubs without an FDE.  The stack
height at a pc is recovered by reading instructions:

* from the function start to the pc when that stretch is straight-line
  code (push/pop, sub/add rsp, ``push rbp; mov rbp, rsp``, ``leave``);
* otherwise forward from the pc to the ``ret`` (or tail ``jmp``) that
  ends the path, undoing the pops and stack adjustments on the way.

Both give a row in the CFI evaluator's format, so the unwinder applies
them the same way.  capstone runs only with ``disasm_lite`` (no detail
mode: 5x slower) over at most a few dozen instructions, and is imported on
first use.
"""
from __future__ import annotations


from layouts.records import NamedRow

from .cfi import CFA_REGISTER, OFFSET

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, List, Optional, Tuple


RSP, RBP, RA = 7, 6, 16
_REG = {"rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6, "rsp": 7,
        "r8": 8, "r9": 9, "r10": 10, "r11": 11, "r12": 12, "r13": 13, "r14": 14, "r15": 15}
MAX_SCAN = 64
_md = None


def _capstone():
    global _md
    if _md is None:
        import capstone
        _md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return _md


def instructions(code: bytes, address: int, limit: int = MAX_SCAN):
    """(address, size, mnemonic, op_str) tuples, at most ``limit``."""
    out = []
    for insn in _capstone().disasm_lite(code, address):
        out.append(insn)
        if len(out) >= limit:
            break
    return out


def _imm(text: str) -> Optional[int]:
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


_LEA_RBP = r"^rsp, \[rbp ([+-]) (0x[0-9a-f]+|\d+)\]$"


def _row(cfa_reg: int, cfa_off: int, saved) -> tuple:
    rules = {RA: (OFFSET, -8)}
    rules.update(saved)
    return ((CFA_REGISTER, cfa_reg, cfa_off), tuple(sorted((r, k, a) for r, (k, a) in rules.items())),
            False, RA)


def row_from_prologue(code: bytes, start: int, pc: int) -> Optional[tuple]:
    """The row at ``pc`` from straight-line code beginning at ``start``; None if it branches."""
    depth = 0              # bytes pushed since entry (return address excluded)
    frame = None           # CFA offset from rbp once ``mov rbp, rsp`` ran
    saved = {}
    if pc == start:
        return _row(RSP, 8, saved)
    for address, size, mnemonic, ops in instructions(code, start, MAX_SCAN):
        if address >= pc:
            break
        if mnemonic == "push":
            depth += 8
            if ops in _REG:
                saved.setdefault(_REG[ops], (OFFSET, -(8 + depth)))
        elif mnemonic == "pop":
            depth -= 8
        elif mnemonic == "sub" and ops.startswith("rsp, "):
            value = _imm(ops[5:])
            if value is None:
                return None
            depth += value
        elif mnemonic == "add" and ops.startswith("rsp, "):
            value = _imm(ops[5:])
            if value is None:
                return None
            depth -= value
        elif mnemonic == "mov" and ops == "rbp, rsp":
            frame = depth + 8
        elif mnemonic == "leave":
            if frame is None:
                return None
            depth = frame - 16
            frame = None
        elif mnemonic in ("ret", "jmp", "call") or mnemonic.startswith("j") or mnemonic == "hlt":
            if mnemonic == "call":
                continue          # a call returns with the stack as it was
            return None           # not straight-line: the forward scan decides
        elif ops.startswith("rsp,") or ops.startswith("esp,"):
            if mnemonic == "lea" and frame is not None:
                import re   # here: this analysis runs only where CFI is missing (cached per pc)
                m = re.match(_LEA_RBP, ops)
                if m:
                    off = int(m.group(2), 0) * (1 if m.group(1) == "+" else -1)
                    depth = frame - 8 - off
                    continue
            return None           # something else writes rsp: give up
        if address + size > pc and address < pc:
            return None           # pc is not on an instruction boundary
    if depth < 0:
        return None
    if frame is not None:
        return _row(RBP, frame, saved)
    return _row(RSP, depth + 8, saved)


def row_from_epilogue(code: bytes, pc: int) -> Optional[tuple]:
    """The row at ``pc`` from the path that runs from ``pc`` to its ``ret``."""
    delta = 0              # how far rsp moved up since pc
    restored = {}          # reg -> rsp-relative (at pc) address where it was saved
    steps = 0
    insns = instructions(code, pc, MAX_SCAN * 2)
    index = {a: i for i, (a, _, _, _) in enumerate(insns)}
    i = 0
    while i < len(insns) and steps < MAX_SCAN:
        steps += 1
        address, size, mnemonic, ops = insns[i]
        if mnemonic == "pop":
            if ops in _REG:
                restored.setdefault(_REG[ops], delta)
            delta += 8
        elif mnemonic == "push":
            delta -= 8
        elif mnemonic == "add" and ops.startswith("rsp, "):
            value = _imm(ops[5:])
            if value is None:
                return None
            delta += value
        elif mnemonic == "sub" and ops.startswith("rsp, "):
            value = _imm(ops[5:])
            if value is None:
                return None
            delta -= value
        elif mnemonic == "leave":
            # rsp = rbp; pop rbp: the frame is rbp-based with the usual layout
            return ((CFA_REGISTER, RBP, 16), ((RBP, OFFSET, -16), (RA, OFFSET, -8)), False, RA)
        elif mnemonic == "ret" or (mnemonic == "jmp" and _imm(ops) is None):
            if delta < 0:
                return None
            cfa_off = delta + 8
            saved = {reg: (OFFSET, where - cfa_off) for reg, where in restored.items()}
            return _row(RSP, cfa_off, saved)
        elif mnemonic == "jmp":
            target = _imm(ops)
            if target not in index:
                return None
            i = index[target]
            continue
        elif mnemonic in ("hlt", "ud2", "int3") or mnemonic.startswith("sys"):
            return None
        elif ops.startswith("rsp,") or ops.startswith("esp,"):
            return None
        i += 1
    return None


def recover_row(read_code: Callable[[int, int], Optional[bytes]], pc: int,
                function_start: Optional[int]) -> Optional[tuple]:
    """A row for ``pc`` without CFI: prologue analysis when the function start is known and
    near, else the path to the return.  ``read_code(address, size)`` gives code bytes."""
    if function_start is not None and 0 <= pc - function_start <= 512:
        code = read_code(function_start, pc - function_start + 16)
        if code:
            row = row_from_prologue(code, function_start, pc)
            if row is not None:
                return row
    code = read_code(pc, 512)
    if code:
        return row_from_epilogue(code, pc)
    return None


class Instruction(NamedRow):
    address: int
    size: int
    mnemonic: str
    operands: str
    location: str       # "function+0x1c" or "" when no symbol is known
    is_current: bool    # the address asked about


def disassemble(read_code: Callable[[int, int], Optional[bytes]], address: int, count: int = 12,
                symbolize: Callable[[int], Tuple[Optional[str], int]] = lambda a: (None, 0),
                function_start: Optional[int] = None) -> List[Instruction]:
    """About ``count`` instructions around ``address`` (half before, half from it).

    Decoding x86 backwards is ambiguous, so the instructions before come
    from decoding forward from the function start when it is known and
    within 64 KiB; otherwise the listing starts at ``address``.
    """
    before: List[tuple] = []
    if function_start is not None and 0 <= address - function_start <= 1 << 16:
        code = read_code(function_start, address - function_start)
        if code:
            decoded = [i for i in _capstone().disasm_lite(code, function_start) if i[0] < address]
            before = decoded[-(count // 2):] if count // 2 else []
    code = read_code(address, 16 * max(1, count))
    after = instructions(code, address, count - len(before)) if code else []
    out = []
    for insn_address, size, mnemonic, ops in before + after:
        name, offset = symbolize(insn_address)
        where = ("%s+0x%x" % (name, offset) if offset else name) if name else ""
        out.append(Instruction(insn_address, size, mnemonic, ops, where, insn_address == address))
    return out


def format_listing(listing: List[Instruction]) -> List[str]:
    """Text lines of a listing, ``=>`` marking the asked-about address."""
    lines = []
    for insn in listing:
        where = " <%s>" % insn.location if insn.location else ""
        lines.append("%s 0x%016x%s: %-7s %s" % ("=>" if insn.is_current else "  ", insn.address, where,
                                               insn.mnemonic, insn.operands))
    return lines
