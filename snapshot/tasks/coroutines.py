"""Tasks' coroutine chains, read from suspended generator frames, level by level.

A task's coroutine is suspended inside ``await``; what it awaits is not a
stored field but the top of its frame's value stack, and whether the frame is
inside ``await`` at all is told differently per version
(``layout.facts.asyncio.yield_from``, picked from a table here).  The chain
follows coroutines, generators (``@types.coroutine``, ``yield from``) and
async generators, like ``cr_await`` / ``gi_yieldfrom`` / ``ag_await`` do, and
stops at anything else (a Future's iterator, an ``async_generator_asend``).

Chains of all tasks are read together, one level at a time: every chain's
generator objects in one batched read (with a little more than the frame
header, so the first slots and usually the awaited object come with it),
then whatever each frame still needs (its frame object before 3.11, the
opcode after the suspension point, the top of its value stack) in the next
batched read.  A thousand tasks four coroutines deep cost a dozen system
calls instead of twenty thousand.
"""
from __future__ import annotations

import struct

from ..errors import SnapshotError
from ..walk.raw import RawFrame

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Sequence, Tuple


_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
#: Longest coroutine chain followed (a cycle or garbage would otherwise never end).
MAX_CHAIN = 256
#: Types whose objects carry a generator frame.
GENERATOR_TYPES = frozenset({"coroutine", "generator", "async_generator"})
#: Bytes read past a generator's frame header (first slots and value stack, usually the awaited
#: object); a generator near the end of a mapping that faults is read again at its exact size.
EXTRA = 192
#: Most slots of one frame read (a garbage count would otherwise read megabytes).
MAX_SLOTS = 100000


class CoroutineFrame:
    """One generator frame of a chain: the raw frame, and what the generator awaits (0: nothing)."""

    __slots__ = ("raw", "awaiting")

    def __init__(self, raw: RawFrame, awaiting: int):
        self.raw = raw
        self.awaiting = awaiting


class _Batch:
    """Reads wanted by many frames, made in one ``read_many`` call."""

    __slots__ = ("requests",)

    def __init__(self):
        self.requests: List[Tuple[int, int]] = []

    def want(self, address: int, size: int) -> int:
        """Index of the read in this batch (-1: nothing to read)."""
        if address <= 0 or size <= 0:
            return -1
        self.requests.append((address, size))
        return len(self.requests) - 1

    def run(self, process) -> List[Optional[bytes]]:
        return process.read_many(self.requests) if self.requests else []


def _get(results: List[Optional[bytes]], index: int) -> Optional[bytes]:
    return results[index] if index >= 0 else None


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
        self.ob_type = layout.PyObject.ob_type
        if self.frame_objects:
            fo = layout.PyFrameObject
            self.f_stacktop = fo.get("f_stacktop")
            self.f_valuestack = fo.get("f_valuestack")
            self.f_stackdepth = fo.get("f_stackdepth")
            self.co_code = layout.PyCodeObject.get("co_code")
            self.bytes_sval = layout.PyBytesObject.ob_sval
            self.gen_read = max(self.gi_frame + 8, self.ob_type + 8)
        else:
            iframe = layout._PyInterpreterFrame
            self.stacktop = iframe.get("stacktop")
            self.stackpointer = iframe.get("stackpointer")
            self.gen_read = self.gi_iframe + walker.frame_header
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

    def type_names(self, addrs: Sequence[int]) -> List[str]:
        """Type names of many objects (their ``ob_type`` in one batched read; names cached by type)."""
        datas = self.process.read_many([(a, self.ob_type + 8) if a else (0, 0) for a in addrs])
        return [self.type_name(_U64.unpack_from(d, self.ob_type)[0]) if d else "" for d in datas]

    # -- chains ---------------------------------------------------------------------------
    def chain(self, coro_addr: int, with_locals: bool) -> List[CoroutineFrame]:
        """The generator frames from ``coro_addr`` inwards (outermost first), bounded."""
        return self.chains([coro_addr], with_locals)[0]

    def chains(self, coro_addrs: Sequence[int], with_locals: bool) -> List[List[CoroutineFrame]]:
        """The chain of every coroutine in ``coro_addrs``, read level by level in batches."""
        out: List[List[CoroutineFrame]] = [[] for _ in coro_addrs]
        seen: List[set] = [set() for _ in coro_addrs]
        current = [(i, a) for i, a in enumerate(coro_addrs) if a]
        opcodes: Dict[Tuple[int, int], Optional[bytes]] = {}
        for _ in range(MAX_CHAIN):
            if not current:
                break
            datas = self._read_generators([a for _, a in current])
            level = []
            for (i, address), data in zip(current, datas):
                seen[i].add(address)
                if data is not None and self.type_name(_U64.unpack_from(data, self.ob_type)[0]) in GENERATOR_TYPES:
                    level.append((i, address, data))
            if self.frame_objects:
                frames = self._frame_objects(level, with_locals, opcodes)
            else:
                frames = self._interpreter_frames(level, with_locals, opcodes)
            current = []
            for (i, _, _), frame in zip(level, frames):
                if frame is None:
                    continue
                out[i].append(frame)
                if frame.awaiting and frame.awaiting not in seen[i]:
                    current.append((i, frame.awaiting))
        return out

    def _read_generators(self, addrs: List[int]) -> List[Optional[bytes]]:
        size = self.gen_read + (0 if self.frame_objects else EXTRA)
        datas = self.process.read_many([(a, size) for a in addrs])
        missing = [k for k, d in enumerate(datas) if d is None]
        if missing and size != self.gen_read:
            for k, d in zip(missing, self.process.read_many([(addrs[k], self.gen_read) for k in missing])):
                datas[k] = d
        return datas

    # -- 3.8-3.10: heap frame objects ------------------------------------------------------
    def _frame_objects(self, level, with_locals: bool, opcodes) -> List[Optional[CoroutineFrame]]:
        walker = self.walker
        frame_addrs = [_U64.unpack_from(data, self.gi_frame)[0] for _, _, data in level]
        fdatas = self.process.read_many([(f, walker.frame_header) if f else (0, 0) for f in frame_addrs])
        # Code objects' bytecode addresses (immutable: cached by code address).
        parsed = []
        unknown = []
        for frame_addr, fdata in zip(frame_addrs, fdatas):
            if not frame_addr or fdata is None:
                parsed.append(None)
                continue
            code_addr = _U64.unpack_from(fdata, walker.fo_code)[0]
            code = walker.codes.get(code_addr)
            if code is None:
                parsed.append(None)
                continue
            parsed.append((frame_addr, fdata, code_addr, code))
            if code_addr not in self._co_code:
                unknown.append(code_addr)
        unknown = sorted(set(unknown))
        for code_addr, data in zip(unknown, self.process.read_many([(c + self.co_code, 8) for c in unknown])):
            if data is not None:
                self._co_code[code_addr] = _U64.unpack(data)[0]
        batch = _Batch()
        plans = []
        stackdepth = self.facts.yield_from == "stackdepth_lasti"
        for item in parsed:
            if item is None:
                plans.append(None)
                continue
            frame_addr, fdata, code_addr, code = item
            lasti = _I32.unpack_from(fdata, walker.fo_lasti)[0]
            op_index = stack_index = -1
            if lasti >= 0:
                index = (lasti + 1) * 2 if stackdepth else lasti + 2
                key = (code_addr, index)
                if key not in opcodes and code_addr in self._co_code:
                    opcodes[key] = None
                    op_index = batch.want(self._co_code[code_addr] + self.bytes_sval + index, 1)
                if stackdepth:
                    depth = _I32.unpack_from(fdata, self.f_stackdepth)[0]
                    valuestack = _U64.unpack_from(fdata, self.f_valuestack)[0]
                    if depth > 0 and valuestack:
                        stack_index = batch.want(valuestack + 8 * (depth - 1), 8)
                else:
                    stacktop = _U64.unpack_from(fdata, self.f_stacktop)[0]
                    if stacktop:
                        stack_index = batch.want(stacktop - 8, 8)
            count = code.nslots if with_locals else (1 if code.needs_first_local else 0)
            slots_index = -1
            if 1 < count <= MAX_SLOTS:
                slots_index = batch.want(frame_addr + walker.fo_localsplus, 8 * count)
            plans.append((lasti, op_index, stack_index, slots_index, count, key if lasti >= 0 else None))
        results = batch.run(self.process)
        out: List[Optional[CoroutineFrame]] = []
        for item, plan in zip(parsed, plans):
            if item is None:
                out.append(None)
                continue
            frame_addr, fdata, code_addr, code = item
            lasti, op_index, stack_index, slots_index, count, key = plan
            if op_index >= 0:
                opcodes[key] = _get(results, op_index)
            offset = lasti * walker.lasti_unit if lasti >= 0 else 0
            slots = None
            if count == 1:
                slots = (_U64.unpack_from(fdata, walker.fo_localsplus)[0],)
            elif count > 1:
                raw_slots = _get(results, slots_index)
                slots = struct.unpack("<%dQ" % count, raw_slots) if raw_slots else None
            raw = RawFrame(code, code.line_for(offset), frame_addr, slots,
                           _U64.unpack_from(fdata, walker.fo_globals)[0] if with_locals else 0, code_addr, offset)
            awaiting = 0
            opcode = opcodes.get(key) if key is not None else None
            value = _get(results, stack_index)
            if opcode and opcode[0] in self.facts.opcodes and value:
                awaiting = _U64.unpack(value)[0]
            out.append(CoroutineFrame(raw, awaiting))
        return out

    # -- 3.11+: frames embedded in the generator ---------------------------------------------
    def _interpreter_frames(self, level, with_locals: bool, opcodes) -> List[Optional[CoroutineFrame]]:
        walker = self.walker
        facts = self.facts
        base = self.gi_iframe
        header = walker.frame_header
        check_resume = facts.yield_from == "resume_oparg"
        batch = _Batch()
        parsed = []
        for _, gen_addr, data in level:
            state = struct.unpack_from("<b", data, self.gi_frame_state)[0]
            if state >= facts.cleared_state:
                parsed.append(None)
                continue
            code_addr = _U64.unpack_from(data, base + walker.if_code)[0] & self.mask
            code = walker.codes.get(code_addr)
            if code is None:
                parsed.append(None)
                continue
            frame_addr = gen_addr + base
            instr = _U64.unpack_from(data, base + walker.if_instr)[0]
            offset = instr - code_addr - code.code_offset
            if not 0 <= offset < (1 << 30):
                offset = 0
            # The awaited object: the top of the value stack, when suspended inside ``await``.
            top_at = 0
            op_index = -1
            key = None
            if state == facts.yield_from_state:
                if self.stackpointer is not None:
                    pointer = _U64.unpack_from(data, base + self.stackpointer)[0]
                    top_at = pointer - 8 * facts.awaited_depth if pointer else 0
                else:
                    top = _I32.unpack_from(data, base + self.stacktop)[0] - facts.awaited_depth
                    top_at = frame_addr + header + 8 * top if top >= 0 else 0
                if check_resume and not instr:
                    top_at = 0
                elif check_resume:
                    key = (code_addr, offset)
                    if key not in opcodes:
                        opcodes[key] = None
                        op_index = batch.want(instr + 2, 2)
            top_index = -1
            if top_at and not gen_addr <= top_at <= gen_addr + len(data) - 8:
                top_index = batch.want(top_at, 8)
            count = code.nslots if with_locals else (1 if code.needs_first_local else 0)
            start = base + header
            slots_index = -1
            if count > MAX_SLOTS:
                count = 0
            elif count and start + 8 * count > len(data):
                slots_index = batch.want(frame_addr + header, 8 * count)
            parsed.append((gen_addr, data, frame_addr, code_addr, code, offset, top_at, top_index, key, op_index,
                           count, slots_index))
        results = batch.run(self.process)
        out: List[Optional[CoroutineFrame]] = []
        for item in parsed:
            if item is None:
                out.append(None)
                continue
            (gen_addr, data, frame_addr, code_addr, code, offset, top_at, top_index, key, op_index,
             count, slots_index) = item
            if op_index >= 0:
                opcodes[key] = _get(results, op_index)
            slots = None
            if count:
                if slots_index >= 0:
                    raw_slots = _get(results, slots_index)
                    slots = struct.unpack("<%dQ" % count, raw_slots) if raw_slots else None
                else:
                    slots = struct.unpack_from("<%dQ" % count, data, base + walker.frame_header)
            globals_addr = _U64.unpack_from(data, base + walker.if_globals)[0] if with_locals else 0
            raw = RawFrame(code, code.line_for(offset), frame_addr, slots, globals_addr, code_addr, offset)
            awaiting = 0
            if top_at:
                inside = key is None or self._resume_inside(opcodes.get(key))
                if inside:
                    if top_index >= 0:
                        value = _get(results, top_index)
                        awaiting = _U64.unpack(value)[0] & self.mask if value else 0
                    else:
                        awaiting = _U64.unpack_from(data, top_at - gen_addr)[0] & self.mask
            out.append(CoroutineFrame(raw, awaiting))
        return out

    def _resume_inside(self, instruction: Optional[bytes]) -> bool:
        """3.11/3.12: suspended inside yield from when the next instruction is RESUME with oparg >= 2."""
        return bool(instruction) and instruction[0] in self.facts.opcodes and instruction[1] >= 2

    def first_slot(self, raw: RawFrame) -> int:
        """The frame's first local (``self`` of a method), read from memory."""
        if raw.localsplus:
            return raw.localsplus[0] & self.mask
        offset = self.walker.fo_localsplus if self.frame_objects else self.walker.frame_header
        return _U64.unpack(self.process.read(raw.frame_addr + offset, 8))[0] & self.mask
