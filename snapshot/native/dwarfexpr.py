"""The DWARF expression stack machine, as far as CFI needs it.

CFA and register rules in ``.eh_frame`` may be expressions: PLT entries
compute the CFA from rsp and rip (``breg7 8; breg16 0; lit15; and; lit11;
ge; lit3; shl; plus``), signal trampolines read the interrupted registers
out of the ``ucontext`` (``breg7 160; deref``).  Only operations that make
sense without debug info about variables are implemented; anything else
raises ``ExpressionError`` and the unwinder stops at that frame instead of
guessing.
"""
from __future__ import annotations

import struct

from ..errors import SnapshotError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, List, Optional, Sequence


MASK = (1 << 64) - 1
#: Bound on executed operations: expressions come from files we do not trust.
MAX_STEPS = 10000


class ExpressionError(SnapshotError):
    """A DWARF expression could not be evaluated (unknown operation, bad stack, missing value)."""

    exit_code = 7
    hint = "the unwind information uses an expression this unwinder does not evaluate"


def uleb(data, pos: int):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def sleb(data, pos: int):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos


def _signed(value: int) -> int:
    return value - (1 << 64) if value & (1 << 63) else value


_FIXED = {0x08: ("<B", 1), 0x09: ("<b", 1), 0x0A: ("<H", 2), 0x0B: ("<h", 2), 0x0C: ("<I", 4),
          0x0D: ("<i", 4), 0x0E: ("<Q", 8), 0x0F: ("<q", 8)}


def evaluate(expr: bytes, registers: Sequence[Optional[int]], load: Callable[[int, int], int],
             initial: Sequence[int] = ()) -> int:
    """Run ``expr``; ``registers`` by DWARF number, ``load(address, size)`` reads target memory.

    Returns the top of the stack (an address or a value, as the caller's
    rule says).
    """
    stack: List[int] = list(initial)
    pos = 0
    steps = 0
    end = len(expr)
    try:
        while pos < end:
            steps += 1
            if steps > MAX_STEPS:
                raise ExpressionError("DWARF expression does not terminate")
            op = expr[pos]
            pos += 1
            if 0x30 <= op <= 0x4F:            # lit0..lit31
                stack.append(op - 0x30)
            elif 0x70 <= op <= 0x8F:          # breg0..breg31
                offset, pos = sleb(expr, pos)
                stack.append((_register(registers, op - 0x70) + offset) & MASK)
            elif 0x50 <= op <= 0x6F:          # reg0..reg31: a location, not a value
                raise ExpressionError("register location DW_OP_reg%d in a CFI expression" % (op - 0x50))
            elif op in _FIXED:
                fmt, size = _FIXED[op]
                stack.append(struct.unpack_from(fmt, expr, pos)[0] & MASK)
                pos += size
            elif op == 0x03:                  # addr
                stack.append(struct.unpack_from("<Q", expr, pos)[0])
                pos += 8
            elif op == 0x06:                  # deref
                stack.append(load(stack.pop(), 8))
            elif op == 0x94:                  # deref_size
                size = expr[pos]
                pos += 1
                stack.append(load(stack.pop(), size))
            elif op == 0x10:                  # constu
                value, pos = uleb(expr, pos)
                stack.append(value & MASK)
            elif op == 0x11:                  # consts
                value, pos = sleb(expr, pos)
                stack.append(value & MASK)
            elif op == 0x12:                  # dup
                stack.append(stack[-1])
            elif op == 0x13:                  # drop
                stack.pop()
            elif op == 0x14:                  # over
                stack.append(stack[-2])
            elif op == 0x15:                  # pick
                index = expr[pos]
                pos += 1
                stack.append(stack[-1 - index])
            elif op == 0x16:                  # swap
                stack[-1], stack[-2] = stack[-2], stack[-1]
            elif op == 0x17:                  # rot
                stack[-1], stack[-2], stack[-3] = stack[-2], stack[-3], stack[-1]
            elif op == 0x19:                  # abs
                stack.append(abs(_signed(stack.pop())) & MASK)
            elif op == 0x1F:                  # neg
                stack.append(-_signed(stack.pop()) & MASK)
            elif op == 0x20:                  # not
                stack.append(~stack.pop() & MASK)
            elif op == 0x23:                  # plus_uconst
                value, pos = uleb(expr, pos)
                stack.append((stack.pop() + value) & MASK)
            elif op == 0x28:                  # bra
                delta = struct.unpack_from("<h", expr, pos)[0]
                pos += 2
                if stack.pop():
                    pos += delta
            elif 0x1A <= op <= 0x2E and op not in (0x1F, 0x20, 0x23):
                b = stack.pop()
                a = stack.pop()
                stack.append(_binary(op, a, b))
            elif op == 0x2F:                  # skip
                delta = struct.unpack_from("<h", expr, pos)[0]
                pos += 2 + delta
            elif op == 0x92:                  # bregx
                reg, pos = uleb(expr, pos)
                offset, pos = sleb(expr, pos)
                stack.append((_register(registers, reg) + offset) & MASK)
            elif op == 0x96:                  # nop
                pass
            else:
                raise ExpressionError("unsupported DWARF operation 0x%02x in a CFI expression" % op)
            if pos < 0 or pos > end:
                raise ExpressionError("DWARF expression branch out of bounds")
    except IndexError:
        raise ExpressionError("DWARF expression stack underflow or truncated operand") from None
    except struct.error:
        raise ExpressionError("DWARF expression truncated") from None
    if not stack:
        raise ExpressionError("DWARF expression left an empty stack")
    return stack[-1]


def _register(registers: Sequence[Optional[int]], number: int) -> int:
    value = registers[number] if number < len(registers) else None
    if value is None:
        raise ExpressionError("DWARF expression needs register %d, which is unknown" % number)
    return value


def _binary(op: int, a: int, b: int) -> int:
    if op == 0x1A:   # and
        return a & b
    if op == 0x1B:   # div (signed)
        if b == 0:
            raise ExpressionError("DWARF expression divides by zero")
        sa, sb = _signed(a), _signed(b)
        q = abs(sa) // abs(sb)
        return (q if (sa < 0) == (sb < 0) else -q) & MASK
    if op == 0x1C:   # minus
        return (a - b) & MASK
    if op == 0x1D:   # mod
        if b == 0:
            raise ExpressionError("DWARF expression divides by zero")
        return a % b
    if op == 0x1E:   # mul
        return (a * b) & MASK
    if op == 0x21:   # or
        return a | b
    if op == 0x22:   # plus
        return (a + b) & MASK
    if op == 0x24:   # shl
        return (a << b) & MASK if b < 64 else 0
    if op == 0x25:   # shr
        return a >> b if b < 64 else 0
    if op == 0x26:   # shra
        return (_signed(a) >> min(b, 63)) & MASK
    if op == 0x27:   # xor
        return a ^ b
    sa, sb = _signed(a), _signed(b)
    if op == 0x29:   # eq
        return int(sa == sb)
    if op == 0x2A:   # ge
        return int(sa >= sb)
    if op == 0x2B:   # gt
        return int(sa > sb)
    if op == 0x2C:   # le
        return int(sa <= sb)
    if op == 0x2D:   # lt
        return int(sa < sb)
    if op == 0x2E:   # ne
        return int(sa != sb)
    raise ExpressionError("unsupported DWARF operation 0x%02x" % op)
