"""Unwinding one thread's native stack from its registers: CFI first, capstone where it is missing.

Per thread: the registers (DWARF-numbered) and one batched read of the
stack from sp; then, frame by frame, the row for the pc (the caller's
``pc - 1``, because a return address may already belong to the next
function, except right after a signal frame, whose interrupted pc is
exact), the CFA and the saved registers, loads served from the stack
buffer.  It stops, saying why, on an undefined return address, a pc of 0
or outside executable memory, a stack pointer that does not grow, an
unreadable load, or the depth cap.
"""
from __future__ import annotations

import struct
from bisect import bisect_right

from . import disasm
from .cfi import (CFA_EXPRESSION, EXPRESSION, OFFSET, REGISTER, SAME_VALUE, UNDEFINED, VAL_EXPRESSION,
                  VAL_OFFSET)
from .dwarfexpr import ExpressionError, evaluate
from .frame import NativeFrame
from .modules import ModuleMap

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


MAX_DEPTH = 512
STACK_WINDOW = 64 << 10
MASK = (1 << 64) - 1
_U64 = struct.Struct("<Q")


class LoadError(Exception):
    """A load the unwinder needed could not be read (internal: it ends the stack)."""


class StackMemory:
    """Remote memory for the loads of one unwind: prefetched windows, more on demand."""

    def __init__(self, process, modules: ModuleMap):
        self.process = process
        self.modules = modules
        self._starts: List[int] = []
        self._chunks: List[Tuple[int, bytes]] = []
        self.reads = 0

    def add(self, start: int, data: bytes) -> None:
        i = bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._chunks.insert(i, (start, data))

    def window(self, sp: int, size: int = STACK_WINDOW) -> Tuple[int, int]:
        """(address, size) to prefetch from ``sp``, clamped to the mapping that holds it."""
        mapping = self.modules.mapping(sp)
        end = sp + size
        if mapping is not None:
            end = min(end, mapping[1])
        return sp, max(0, end - sp)

    def load(self, address: int, size: int = 8) -> int:
        i = bisect_right(self._starts, address) - 1
        if i >= 0:
            start, data = self._chunks[i]
            if address + size <= start + len(data):
                if size == 8:
                    return _U64.unpack_from(data, address - start)[0]
                return int.from_bytes(data[address - start:address - start + size], "little")
        return self._fetch(address, size)

    def _fetch(self, address: int, size: int) -> int:
        if address <= 0 or address + size > MASK:
            raise LoadError("load at 0x%x" % address)
        start = address & ~0xFFF
        mapping = self.modules.mapping(address)
        end = start + STACK_WINDOW
        if mapping is not None:
            end = min(end, mapping[1])
        if end < address + size:
            end = address + size
        self.reads += 1
        got = self.process.read_many([(start, end - start)])[0]
        if got is None:
            got = self.process.read_many([(address, size)])[0]
            if got is None:
                raise LoadError("cannot read 0x%x" % address)
            start = address
        self.add(start, got)
        return int.from_bytes(got[address - start:address - start + size], "little")


class Unwinder:
    """Native stacks of one target; keeps its module map and capstone rows between calls."""

    def __init__(self, process, modules: Optional[ModuleMap] = None):
        self.process = process
        self.modules = modules or ModuleMap(process.mapped_files(), process.maps())
        self._anon_rows: Dict[int, Optional[tuple]] = {}
        self._frames: Dict[tuple, NativeFrame] = {}
        self.stats = {"frames": 0, "cfi": 0, "capstone": 0, "frame_pointer": 0}

    # -- several threads -------------------------------------------------------------------
    def stacks(self, registers: Dict[int, object], max_depth: int = MAX_DEPTH):
        """{tid: (frames, stop reason)} for threads whose registers are given; the stack
        windows of all threads are read in one batched call."""
        memory = StackMemory(self.process, self.modules)
        requests = []
        order = []
        for tid, regs in registers.items():
            sp = regs.sp
            if sp:
                address, size = memory.window(sp)
                if size:
                    requests.append((address, size))
                    order.append(tid)
        if requests:
            memory.reads += 1
            for (address, _), data in zip(requests, self.process.read_many(requests)):
                if data:
                    memory.add(address, data)
        return {tid: self.unwind(regs, memory, max_depth) for tid, regs in registers.items()}

    # -- one thread ------------------------------------------------------------------------
    def unwind(self, registers, memory: StackMemory, max_depth: int = MAX_DEPTH):
        regs = list(registers.dwarf) + [None] * (17 - len(registers.dwarf))
        frames: List[NativeFrame] = []
        exact_pc = True          # frame 0 and frames interrupted by a signal
        reason = "depth limit %d" % max_depth
        while len(frames) < max_depth:
            pc = regs[16]
            sp = regs[7]
            if not pc:
                reason = "return address 0" if frames else "no pc"
                break
            if self.modules.executable(pc) is None:
                reason = "pc 0x%x outside executable mappings" % pc
                break
            lookup = pc if exact_pc else pc - 1
            module = self.modules.module_at(lookup)
            row, how = self._row(module, lookup, pc)
            key = (pc, lookup)
            frame = self._frames.get(key)
            if frame is None:
                if len(self._frames) > 200000:
                    self._frames.clear()
                frame = self._frames[key] = self._frame(module, pc, lookup, row, how)
            frames.append(frame)
            if row is None:
                reason = "no unwind information for 0x%x" % pc
                break
            try:
                new = self._apply(row, regs, memory)
            except (LoadError, ExpressionError) as e:
                reason = "unreadable caller frame (%s)" % e
                break
            if new is None:
                reason = "outermost frame (return address undefined)"
                break
            self.stats[how.replace("-", "_")] += 1
            signal = row[2]
            new_sp = new[7]
            if new_sp is None or (not signal and sp is not None and new_sp <= sp):
                reason = "stack pointer did not grow"
                break
            regs = new
            exact_pc = bool(signal)
        self.stats["frames"] += len(frames)
        return frames, reason

    def _row(self, module, lookup: int, pc: int):
        if module is not None:
            vaddr = lookup - module.load_bias
            row = module.row(vaddr)
            if row is not None:
                return row, "cfi"
            key = ("capstone", vaddr)
            rows = module.rows
            if key in rows:
                row = rows[key]
            else:
                elf = module.elf
                start = None
                name, offset, exact = module.symbols.lookup(vaddr)
                if name is not None and exact:
                    start = vaddr - offset
                # capstone reads forward from the real pc (a return address is an
                # instruction boundary; pc - 1 is not)
                row = disasm.recover_row(lambda a, n: elf.read_vaddr(a, n), vaddr + (pc - lookup),
                                         start) if elf is not None else None
                rows[key] = row
            return (row, "capstone") if row is not None else self._frame_pointer()
        if pc in self._anon_rows:
            row = self._anon_rows[pc]
        else:
            mapping = self.modules.executable(lookup)
            row = None
            if mapping is not None:
                def read_code(address, size, _end=mapping[1], _start=mapping[0]):
                    if address < _start:
                        return None
                    size = min(size, _end - address)
                    return self.process.read_many([(address, size)])[0] if size > 0 else None
                row = disasm.recover_row(read_code, pc, None)
            self._anon_rows[pc] = row
        return (row, "capstone") if row is not None else self._frame_pointer()

    @staticmethod
    def _frame_pointer():
        from .cfi import CFA_REGISTER
        return ((CFA_REGISTER, 6, 16), ((6, OFFSET, -16), (16, OFFSET, -8)), False, 16), "frame-pointer"

    def _frame(self, module, pc: int, lookup: int, row, how: str) -> NativeFrame:
        signal = bool(row is not None and row[2])
        how = how if row is not None else ""
        if module is None:
            return NativeFrame(pc, None, 0, "", "", None, signal, how)
        if row is not None and row[2]:
            lookup = pc     # a signal trampoline: its FDE starts a byte early, its symbol does not
        vaddr = lookup - module.load_bias
        name, offset, exact = module.symbols.lookup(vaddr)
        offset += pc - lookup
        if exact:
            return NativeFrame(pc, name, offset, module.path, module.build_id, None, signal, how)
        return NativeFrame(pc, None, offset if name else 0, module.path, module.build_id, name, signal, how)

    @staticmethod
    def _apply(row, regs: List[Optional[int]], memory: StackMemory) -> Optional[List[Optional[int]]]:
        cfa_rule, rules, _signal, ra = row
        load = memory.load
        if cfa_rule[0] == CFA_EXPRESSION:
            cfa = evaluate(cfa_rule[1], regs, load)
        else:
            base = regs[cfa_rule[1]] if cfa_rule[1] < len(regs) else None
            if base is None:
                raise LoadError("CFA register %d unknown" % cfa_rule[1])
            cfa = (base + cfa_rule[2]) & MASK
        new = list(regs)
        new[7] = cfa
        ra_defined = False
        for reg, kind, arg in rules:
            if reg > 16:
                continue
            if kind == OFFSET:
                value = load((cfa + arg) & MASK)
            elif kind == VAL_OFFSET:
                value = (cfa + arg) & MASK
            elif kind == REGISTER:
                value = regs[arg] if arg < len(regs) else None
            elif kind == EXPRESSION:
                value = load(evaluate(arg, regs, load, (cfa,)))
            elif kind == VAL_EXPRESSION:
                value = evaluate(arg, regs, load, (cfa,))
            elif kind == UNDEFINED:
                value = None
            elif kind == SAME_VALUE:
                value = regs[reg]
            else:
                continue
            new[reg] = value
            if reg == ra:
                ra_defined = True
        if ra != 16:
            new[16] = new[ra] if ra < len(new) else None
        elif not ra_defined:
            return None
        if new[16] is None:
            return None
        return new
