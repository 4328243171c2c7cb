"""A task's coroutine chain, read from suspended generator frames.

A task's coroutine is suspended inside ``await``; what it awaits is not a
stored field but the top of its frame's value stack, and whether the frame is
inside ``await`` at all is told differently per version
(``layout.facts.asyncio.yield_from``, picked from a table here).  The chain
follows coroutines, generators (``@types.coroutine``, ``yield from``) and
async generators, like ``cr_await`` / ``gi_yieldfrom`` / ``ag_await`` do, and
stops at anything else (a Future's iterator, an ``async_generator_asend``).
"""
from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

from ..errors import CorruptDataError, MemoryReadError, SnapshotError
from ..walk.walker import RawFrame

_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
#: Longest coroutine chain followed (a cycle or garbage would otherwise never end).
MAX_CHAIN = 256
#: Types whose objects carry a generator frame.
GENERATOR_TYPES = frozenset({"coroutine", "generator", "async_generator"})


class CoroutineFrame:
    """One generator frame of a chain: the raw frame, and what the generator awaits (0: nothing)."""

    __slots__ = ("raw", "awaiting")

    def __init__(self, raw: RawFrame, awaiting: int):
        self.raw = raw
        self.awaiting = awaiting


class CoroutineReader:
    """Reads generator frames of one target (the walker's code cache and offsets)."""

    def __init__(self, process, layout, walker, objects):
        self.process = process
        self.layout = layout
        self.walker = walker
        self.objects = objects
        self.facts = layout.facts.asyncio
        gen = layout.PyGenObject
        self.frame_objects = layout.facts.frames.model == "frame_object"
        self.gi_frame = gen.get("gi_frame")
        self.gi_iframe = gen.get("gi_iframe")
        self.gi_frame_state = gen.get("gi_frame_state")
        self.mask = walker.tag_mask
        if self.frame_objects:
            fo = layout.PyFrameObject
            self.f_stacktop = fo.get("f_stacktop")
            self.f_valuestack = fo.get("f_valuestack")
            self.f_stackdepth = fo.get("f_stackdepth")
            self.co_code = layout.PyCodeObject.get("co_code")
            self.bytes_sval = layout.PyBytesObject.ob_sval
            self.gen_read = self.gi_frame + 8
        else:
            iframe = layout._PyInterpreterFrame
            self.stacktop = iframe.get("stacktop")
            self.stackpointer = iframe.get("stackpointer")
            self.gen_read = self.gi_iframe + walker.frame_header
        self._yield_from = _YIELD_FROM[self.facts.yield_from].__get__(self)
        self._co_code: Dict[int, int] = {}
        self._type_names: Dict[int, str] = {}

    # -- types -------------------------------------------------------------------------
    def type_name(self, type_addr: int) -> str:
        name = self._type_names.get(type_addr)
        if name is None:
            try:
                name = self.objects.type_name(type_addr)
            except (SnapshotError, UnicodeDecodeError, ValueError):
                name = ""
            self._type_names[type_addr] = name
        return name

    # -- chains ---------------------------------------------------------------------------
    def chain(self, coro_addr: int, with_locals: bool) -> List[CoroutineFrame]:
        """The generator frames from ``coro_addr`` inwards (outermost first), bounded."""
        out: List[CoroutineFrame] = []
        seen = set()
        address = coro_addr
        while address and address not in seen and len(out) < MAX_CHAIN:
            seen.add(address)
            try:
                data = self.process.read(address, self.gen_read)
            except MemoryReadError:
                break
            if self.type_name(_U64.unpack_from(data, 8)[0]) not in GENERATOR_TYPES:
                break
            frame = self.frame(address, data, with_locals)
            if frame is None:
                break
            out.append(frame)
            address = frame.awaiting
        return out

    def frame(self, gen_addr: int, data: bytes, with_locals: bool) -> Optional[CoroutineFrame]:
        """The generator's frame (None when it has none: finished or cleared)."""
        try:
            if self.frame_objects:
                return self._frame_object(gen_addr, data, with_locals)
            return self._interpreter_frame(gen_addr, data, with_locals)
        except (MemoryReadError, CorruptDataError, struct.error):
            return None

    def _frame_object(self, gen_addr: int, data: bytes, with_locals: bool) -> Optional[CoroutineFrame]:
        walker = self.walker
        frame_addr = _U64.unpack_from(data, self.gi_frame)[0]
        if not frame_addr:
            return None
        fdata = self.process.read(frame_addr, walker.frame_header)
        code_addr = _U64.unpack_from(fdata, walker.fo_code)[0]
        code = walker.codes.get(code_addr)
        if code is None:
            return None
        lasti = _I32.unpack_from(fdata, walker.fo_lasti)[0]
        offset = lasti * walker.lasti_unit if lasti >= 0 else 0
        slots = self._slots(frame_addr + walker.fo_localsplus, fdata, walker.fo_localsplus, code, with_locals)
        raw = RawFrame(code, code.line_for(offset), frame_addr, slots,
                       _U64.unpack_from(fdata, walker.fo_globals)[0] if with_locals else 0, code_addr, offset)
        awaiting = self._yield_from(gen_addr, data, frame_addr, fdata, code_addr, lasti) if lasti >= 0 else 0
        return CoroutineFrame(raw, awaiting)

    def _interpreter_frame(self, gen_addr: int, data: bytes, with_locals: bool) -> Optional[CoroutineFrame]:
        walker = self.walker
        state = struct.unpack_from("<b", data, self.gi_frame_state)[0]
        if state >= self.facts.cleared_state:
            return None
        base = self.gi_iframe
        frame_addr = gen_addr + base
        code_addr = _U64.unpack_from(data, base + walker.if_code)[0] & self.mask
        code = walker.codes.get(code_addr)
        if code is None:
            return None
        instr = _U64.unpack_from(data, base + walker.if_instr)[0]
        offset = instr - code_addr - code.code_offset
        if not 0 <= offset < (1 << 30):
            offset = 0
        slots = self._slots(frame_addr + walker.frame_header, data, base + walker.frame_header, code, with_locals)
        globals_addr = _U64.unpack_from(data, base + walker.if_globals)[0] if with_locals else 0
        raw = RawFrame(code, code.line_for(offset), frame_addr, slots, globals_addr, code_addr, offset)
        awaiting = self._yield_from(gen_addr, data, frame_addr, data, instr, state)
        return CoroutineFrame(raw, awaiting)

    def _slots(self, address: int, data: bytes, start: int, code, with_locals: bool) -> Optional[Tuple[int, ...]]:
        count = code.nslots if with_locals else (1 if code.needs_first_local else 0)
        if not count or count > 100000:
            return None
        if start + 8 * count <= len(data):
            return struct.unpack_from("<%dQ" % count, data, start)
        return struct.unpack_from("<%dQ" % count, self.process.read(address, 8 * count))

    def first_slot(self, raw: RawFrame) -> int:
        """The frame's first local (``self`` of a method), read from memory."""
        if raw.localsplus:
            return raw.localsplus[0] & self.mask
        offset = self.walker.fo_localsplus if self.frame_objects else self.walker.frame_header
        return _U64.unpack(self.process.read(raw.frame_addr + offset, 8))[0] & self.mask

    # -- what a suspended frame awaits, per version --------------------------------------
    def _next_opcode_lasti(self, code_addr: int, index: int) -> int:
        co_code = self._co_code.get(code_addr)
        if co_code is None:
            co_code = _U64.unpack(self.process.read(code_addr + self.co_code, 8))[0]
            self._co_code[code_addr] = co_code
        return self.process.read(co_code + self.bytes_sval + index, 1)[0]

    def _yf_stacktop_lasti(self, gen_addr, data, frame_addr, fdata, code_addr, lasti) -> int:
        """3.8/3.9: f_stacktop is set while suspended; the next opcode must be YIELD_FROM."""
        stacktop = _U64.unpack_from(fdata, self.f_stacktop)[0]
        if not stacktop or self._next_opcode_lasti(code_addr, lasti + 2) not in self.facts.opcodes:
            return 0
        return _U64.unpack(self.process.read(stacktop - 8, 8))[0]

    def _yf_stackdepth_lasti(self, gen_addr, data, frame_addr, fdata, code_addr, lasti) -> int:
        """3.10: the next opcode must be YIELD_FROM; the awaited object is f_valuestack[f_stackdepth-1]."""
        if self._next_opcode_lasti(code_addr, (lasti + 1) * 2) not in self.facts.opcodes:
            return 0
        depth = _I32.unpack_from(fdata, self.f_stackdepth)[0]
        valuestack = _U64.unpack_from(fdata, self.f_valuestack)[0]
        if depth <= 0 or not valuestack:
            return 0
        return _U64.unpack(self.process.read(valuestack + 8 * (depth - 1), 8))[0]

    def _top_of_stack(self, frame_addr: int, data: bytes) -> int:
        base = self.gi_iframe
        if self.stackpointer is not None:
            pointer = _U64.unpack_from(data, base + self.stackpointer)[0]
            if not pointer:
                return 0
            return _U64.unpack(self.process.read(pointer - 8 * self.facts.awaited_depth, 8))[0] & self.mask
        top = _I32.unpack_from(data, base + self.stacktop)[0] - self.facts.awaited_depth
        if top < 0:
            return 0
        return _U64.unpack(self.process.read(frame_addr + self.walker.frame_header + 8 * top, 8))[0]

    def _yf_resume_oparg(self, gen_addr, data, frame_addr, fdata, instr, state) -> int:
        """3.11/3.12: suspended inside yield from when the next instruction is RESUME with oparg >= 2."""
        if state != self.facts.yield_from_state or not instr:
            return 0
        opcode, oparg = self.process.read(instr + 2, 2)
        if opcode not in self.facts.opcodes or oparg < 2:
            return 0
        return self._top_of_stack(frame_addr, data)

    def _yf_frame_state(self, gen_addr, data, frame_addr, fdata, instr, state) -> int:
        """3.13+: the frame state says so (FRAME_SUSPENDED_YIELD_FROM)."""
        if state != self.facts.yield_from_state:
            return 0
        return self._top_of_stack(frame_addr, data)


_YIELD_FROM = {
    "stacktop_lasti": CoroutineReader._yf_stacktop_lasti,
    "stackdepth_lasti": CoroutineReader._yf_stackdepth_lasti,
    "resume_oparg": CoroutineReader._yf_resume_oparg,
    "frame_state": CoroutineReader._yf_frame_state,
}
