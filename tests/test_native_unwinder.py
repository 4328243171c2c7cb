"""The unwind loop on synthetic memory: every stop condition, signal frames, loads past the window."""
from __future__ import annotations

import struct

from snapshot.native.cfi import CFA_EXPRESSION, CFA_REGISTER, EXPRESSION, OFFSET, UNDEFINED
from snapshot.native.modules import Module, ModuleMap
from snapshot.native.symbols import SymbolTable
from snapshot.native.unwinder import STACK_WINDOW, Unwinder
from snapshot.process.base import MappedFile, MemoryMap, Registers

CODE, CODE_END = 0x400000, 0x410000
STACK, STACK_END = 0x7F0000, 0x800000
#: plain frame: CFA = rsp + 16, return address at CFA - 8, rbx at CFA - 16
PLAIN = ((CFA_REGISTER, 7, 16), ((3, OFFSET, -16), (16, OFFSET, -8)), False, 16)
OUTERMOST = ((CFA_REGISTER, 7, 8), ((16, UNDEFINED, 0),), False, 16)


class FakeProcess:
    def __init__(self, memory: dict):
        self.memory = memory      # address -> u64
        self.reads = []

    def read_many(self, requests):
        self.reads.append(list(requests))
        out = []
        for address, size in requests:
            if not (STACK <= address and address + size <= STACK_END):
                out.append(None)
                continue
            out.append(b"".join(struct.pack("<Q", self.memory.get(a, 0)) for a in range(address, address + size, 8)))
        return out

    def maps(self):
        return [MemoryMap(CODE, CODE_END, "r-xp", 0, "/fake/prog"), MemoryMap(STACK, STACK_END, "rw-p", 0, "[stack]")]

    def mapped_files(self):
        return [MappedFile("/fake/prog", CODE, CODE_END, 0, "", "/nonexistent/prog")]


def unwinder_with(process, rows, symbols=((CODE, 0x10000, "everything"),)):
    modules = ModuleMap(process.mapped_files(), process.maps())
    module: Module = modules.modules[0]
    module.rows = dict(rows)
    module._symbols = SymbolTable([s[0] for s in symbols], [s[1] for s in symbols], [s[2] for s in symbols])
    return Unwinder(process, modules)


def regs(pc, sp, rbx=0):
    values = [0] * 17
    values[16], values[7], values[3] = pc, sp, rbx
    return Registers("x86_64", tuple(values))


def test_plain_chain_to_the_outermost_frame():
    sp = STACK_END - 0x1000
    memory = {sp + 8: CODE + 0x105, sp + 0: 0xB0B,               # frame 0 -> caller at 0x105
              sp + 24: CODE + 0x205, sp + 16: 0xB1B}             # frame 1 -> caller at 0x205
    process = FakeProcess(memory)
    u = unwinder_with(process, {CODE + 0x10: PLAIN, CODE + 0x104: PLAIN, CODE + 0x204: OUTERMOST})
    (frames, why), = u.stacks({1: regs(CODE + 0x10, sp)}).values()
    assert [f.address for f in frames] == [CODE + 0x10, CODE + 0x105, CODE + 0x205]
    assert "outermost" in why and all(f.symbol == "everything" for f in frames)
    assert frames[1].offset == 0x105 and frames[0].how == "cfi"
    assert len(process.reads) == 1          # one batched read of the stack window


def test_stack_pointer_must_grow():
    sp = STACK_END - 0x1000
    same = ((CFA_REGISTER, 7, 0), ((16, OFFSET, 8),), False, 16)   # CFA = rsp: never grows
    process = FakeProcess({sp + 8: CODE + 0x10})
    u = unwinder_with(process, {CODE + 0x10: same, CODE + 0xF: same})
    (frames, why), = u.stacks({1: regs(CODE + 0x10, sp)}).values()
    assert why == "stack pointer did not grow" and len(frames) == 1


def test_depth_cap():
    sp = STACK_END - 0x10000
    memory = {sp + 16 * i + 8: CODE + 0x11 for i in range(100)}
    process = FakeProcess(memory)
    u = unwinder_with(process, {CODE + 0x10: PLAIN})
    (frames, why), = u.stacks({1: regs(CODE + 0x10, sp)}, max_depth=20).values()
    assert len(frames) == 20 and why == "depth limit 20"


def test_pc_outside_executable_memory_and_zero():
    sp = STACK_END - 0x1000
    for ra, expected in ((0x12345, "outside executable mappings"), (0, "return address 0")):
        process = FakeProcess({sp + 8: ra})
        u = unwinder_with(process, {CODE + 0x10: PLAIN})
        (frames, why), = u.stacks({1: regs(CODE + 0x10, sp)}).values()
        assert len(frames) == 1 and expected in why


def test_unreadable_load_ends_the_stack():
    far = 0x900000       # not mapped
    cfa_far = ((CFA_EXPRESSION, bytes([0x10]) + bytes([0x80, 0x80, 0xA4, 0x04])), ((16, OFFSET, -8),), False, 16)
    process = FakeProcess({})
    u = unwinder_with(process, {CODE + 0x10: cfa_far})
    (frames, why), = u.stacks({1: regs(CODE + 0x10, STACK_END - 0x100)}).values()
    assert far == 0x900000 and len(frames) == 1 and why.startswith("unreadable caller frame")


def test_no_unwind_information():
    process = FakeProcess({})
    u = unwinder_with(process, {CODE + 0x10: None, ("capstone", CODE + 0x10): None})
    u._frame_pointer = lambda: (None, "frame-pointer")
    (frames, why), = u.stacks({1: regs(CODE + 0x10, STACK_END - 0x100)}).values()
    assert len(frames) == 1 and why.startswith("no unwind information")


def test_signal_frame_interrupted_pc_is_exact_and_loads_past_the_window():
    """A signal trampoline's row restores every register from the ucontext; the interrupted
    frame is looked up at its pc itself (not pc - 1).  The ucontext sits past the prefetched
    window, so it is read on demand."""
    sp = STACK_END - 0xF000 - STACK_WINDOW
    uc = sp + STACK_WINDOW + 0x100
    memory = {uc - 8: CODE + 0x300,                       # the handler returns into the trampoline
              uc + 160: STACK_END - 0x800,                 # interrupted rsp
              uc + 168: CODE + 0x400,                      # interrupted rip (exact)
              uc + 128: 0x5157,                            # interrupted rbx
              STACK_END - 0x800 + 8: 0}                    # and its caller: return address 0
    restore = ((CFA_EXPRESSION, bytes([0x77]) + bytes([0xA0, 0x01]) + bytes([0x06])),
               ((3, EXPRESSION, bytes([0x77, 0x80, 0x01])), (7, EXPRESSION, bytes([0x77, 0xA0, 0x01])),
                (16, EXPRESSION, bytes([0x77, 0xA8, 0x01]))), True, 16)
    handler = ((CFA_REGISTER, 7, uc - sp), ((16, OFFSET, -8),), False, 16)   # its CFA is the ucontext
    process = FakeProcess(memory)
    u = unwinder_with(process, {CODE + 0x10: handler, CODE + 0x2FF: restore, CODE + 0x400: PLAIN})
    (frames, why), = u.stacks({1: regs(CODE + 0x10, sp)}).values()
    assert [f.address for f in frames] == [CODE + 0x10, CODE + 0x300, CODE + 0x400]
    assert frames[1].signal_frame and not frames[2].signal_frame
    assert why == "return address 0"
    assert frames[1].address == CODE + 0x300 and CODE + 0x3FF not in u.modules.modules[0].rows
    assert len(process.reads) >= 2        # the ucontext came from an on-demand read
