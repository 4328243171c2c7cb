"""Rebuilding every thread's Python stack from remote memory.

The walker is version-blind: it reads offsets and behaviours from the
``Layout`` and never tests a version number.  It is also the sampling hot
path, so it reads with ``struct.unpack_from`` at compiled offsets, reads each
3.11+ data-stack chunk once instead of one read per frame, and caches
immutable code objects by address (``CodeCache``).  Every walk is bounded:
thread and frame counts are capped and pointer cycles end the walk.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from layouts import Layout

from .codecache import CodeCache, CodeInfo
from .errors import CorruptDataError, MemoryReadError
from .memory import MemoryReader

MAX_THREADS = 4096
MAX_DEPTH = 20000
#: First read of a data-stack chunk; chunks are at least 16 KiB.
CHUNK_READ = 16 * 1024
MAX_CHUNK = 64 << 20
MAX_CHUNKS = 256

_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")


@dataclass
class RawFrame:
    """One Python frame as found in memory, before it becomes a model.Frame."""

    code: CodeInfo
    line: int
    frame_addr: int
    localsplus: Optional[Tuple[int, ...]] = None  # slot values, when locals were asked for
    owner_frame_object: bool = False


@dataclass
class RawThread:
    tstate_addr: int
    thread_id: int
    native_id: Optional[int]
    frames: List[RawFrame]
    truncated: bool = False


class _Chunks:
    """Copies of a thread's data-stack chunks, loaded newest first on demand."""

    __slots__ = ("memory", "next_addr", "loaded", "count")

    def __init__(self, memory: MemoryReader, newest: int):
        self.memory = memory
        self.next_addr = newest
        self.loaded: List[Tuple[int, int, bytes]] = []  # (start, end, data)
        self.count = 0

    def find(self, address: int, size: int) -> Optional[Tuple[bytes, int]]:
        while True:
            for start, end, data in self.loaded:
                if start <= address and address + size <= end:
                    return data, address - start
            if not self._load_next():
                return None

    def _load_next(self) -> bool:
        address = self.next_addr
        if not address or self.count >= MAX_CHUNKS:
            return False
        self.count += 1
        self.next_addr = 0
        try:
            data = self.memory.read(address, CHUNK_READ)
        except MemoryReadError:
            return False
        previous, size, top = struct.unpack_from("<QQQ", data, 0)
        if size > MAX_CHUNK or size < 32:
            return False
        if size > len(data):
            try:
                data = self.memory.read(address, size)
            except MemoryReadError:
                return False
        self.loaded.append((address, address + len(data), data))
        self.next_addr = previous
        return True


class Walker:
    """Walks threads and frames of one interpreter with one layout."""

    def __init__(self, memory: MemoryReader, layout: Layout, runtime_addr: int, codes: CodeCache):
        self.memory = memory
        self.layout = layout
        self.runtime_addr = runtime_addr
        self.codes = codes
        f = layout.features
        self.f = f
        ts = layout.PyThreadState
        self.tstate_size = ts.size
        self.ts_next = ts.next
        self.ts_interp = ts.interp
        self.ts_thread_id = ts.thread_id
        self.ts_native_id = ts.get("native_thread_id")
        self.ts_frame = ts.get(f.tstate_frame)
        self.ts_chunk = ts.get("datastack_chunk")
        self.cframe_current = layout.structs["_PyCFrame"].current_frame if f.tstate_frame == "cframe" else None
        self.tag_mask = ~f.stackref_tag_mask & 0xFFFFFFFFFFFFFFFF
        if f.frame_model == "frame_object":
            fo = layout.PyFrameObject
            self.fo_back, self.fo_code, self.fo_lasti = fo.f_back, fo.f_code, fo.f_lasti
            self.fo_localsplus = fo.f_localsplus
            self.frame_header = fo.f_localsplus + 8
        else:
            iframe = layout._PyInterpreterFrame
            self.if_code = iframe.fields[f.frame_code_field].offset
            self.if_previous = iframe.previous
            self.if_instr = iframe.fields[f.frame_instr_field].offset
            self.if_owner = iframe.owner
            self.if_localsplus = iframe.localsplus
            self.frame_header = iframe.localsplus
        interp = layout.PyInterpreterState
        self.interp_threads = interp.get("threads_head", interp.get("tstate_head"))

    # -- interpreter and thread states --------------------------------------
    def interpreter_addr(self) -> int:
        address = _U64.unpack(self.memory.read(self.runtime_addr + self.layout._PyRuntimeState.interpreters_head, 8))[0]
        if not address:
            raise CorruptDataError("the interpreter is not initialised (no interpreter state yet)")
        return address

    def thread_states(self, interp_addr: int) -> List[Tuple[int, bytes]]:
        """Every thread state of the interpreter as (address, raw struct)."""
        head = _U64.unpack(self.memory.read(interp_addr + self.interp_threads, 8))[0]
        result = []
        seen = set()
        address = head
        while address and len(result) < MAX_THREADS:
            if address in seen:
                break
            seen.add(address)
            raw = self.memory.read(address, self.tstate_size)
            if _U64.unpack_from(raw, self.ts_interp)[0] != interp_addr:
                raise CorruptDataError("thread state 0x%x does not belong to interpreter 0x%x" % (address, interp_addr))
            result.append((address, raw))
            address = _U64.unpack_from(raw, self.ts_next)[0]
        return result

    # -- stacks ----------------------------------------------------------------
    def walk_thread(self, tstate_addr: int, raw: bytes, with_locals: bool) -> RawThread:
        thread_id = _U64.unpack_from(raw, self.ts_thread_id)[0]
        native_id = _U64.unpack_from(raw, self.ts_native_id)[0] if self.ts_native_id is not None else None
        if self.f.frame_model == "frame_object":
            frames, truncated = self._walk_frame_objects(_U64.unpack_from(raw, self.ts_frame)[0], with_locals)
        else:
            frames, truncated = self._walk_interpreter_frames(raw, with_locals)
        return RawThread(tstate_addr, thread_id, native_id, frames, truncated)

    def _walk_frame_objects(self, address: int, with_locals: bool) -> Tuple[List[RawFrame], bool]:
        frames: List[RawFrame] = []
        seen = set()
        codes = self.codes
        read = self.memory.read
        while address:
            if address in seen or len(frames) >= MAX_DEPTH:
                return frames, True
            seen.add(address)
            data = read(address, self.frame_header)
            code_addr = _U64.unpack_from(data, self.fo_code)[0]
            code = codes.get(code_addr)
            if code is None:
                return frames, True
            lasti = _I32.unpack_from(data, self.fo_lasti)[0]
            line = code.line_for(lasti * self.f.lasti_unit if lasti >= 0 else 0)
            slots = None
            if with_locals or code.needs_first_local:
                count = code.nslots if with_locals else 1
                if count <= 1:
                    slots = (_U64.unpack_from(data, self.fo_localsplus)[0],) if count == 1 else ()
                elif count <= 100000:
                    slot_data = read(address + self.fo_localsplus, 8 * count)
                    slots = struct.unpack_from("<%dQ" % count, slot_data)
            frames.append(RawFrame(code, line, address, slots))
            address = _U64.unpack_from(data, self.fo_back)[0]
        return frames, False

    def _current_frame(self, raw: bytes) -> int:
        pointer = _U64.unpack_from(raw, self.ts_frame)[0]
        if self.cframe_current is None or not pointer:
            return pointer
        return _U64.unpack(self.memory.read(pointer + self.cframe_current, 8))[0]

    def _walk_interpreter_frames(self, raw: bytes, with_locals: bool) -> Tuple[List[RawFrame], bool]:
        frames: List[RawFrame] = []
        address = self._current_frame(raw)
        if not address:
            return frames, False
        chunks = _Chunks(self.memory, _U64.unpack_from(raw, self.ts_chunk)[0]) if self.ts_chunk is not None else None
        seen = set()
        codes = self.codes
        mask = self.tag_mask
        header = self.frame_header
        skip_from = self.f.skip_owner_from
        while address:
            if address in seen or len(frames) >= MAX_DEPTH:
                return frames, True
            seen.add(address)
            found = chunks.find(address, header) if chunks is not None else None
            if found is None:
                data, base = self.memory.read(address, header), 0
                in_chunk = False
            else:
                data, base = found
                in_chunk = True
            previous = _U64.unpack_from(data, base + self.if_previous)[0]
            owner = data[base + self.if_owner]
            if skip_from is not None and owner >= skip_from:
                address = previous
                continue
            code_addr = _U64.unpack_from(data, base + self.if_code)[0] & mask
            code = codes.get(code_addr)
            if code is None:
                # Not a code object (3.13+ shim frames carry None): skip it.
                address = previous
                continue
            instr = _U64.unpack_from(data, base + self.if_instr)[0]
            offset = instr - code_addr - code.code_offset
            line = code.line_for(offset if 0 <= offset < (1 << 30) else 0)
            slots = None
            count = code.nslots if with_locals else (1 if code.needs_first_local else 0)
            if count and count <= 100000:
                start = base + header
                if in_chunk and start + 8 * count <= len(data):
                    slots = struct.unpack_from("<%dQ" % count, data, start)
                else:
                    slots = struct.unpack_from("<%dQ" % count, self.memory.read(address + header, 8 * count))
            frames.append(RawFrame(code, line, address, slots))
            address = previous
        return frames, False


def read_pointers(memory: MemoryReader, addresses: List[int]) -> Dict[int, int]:
    """Many 8-byte reads in one call (used for GIL and interpreter fields)."""
    values = memory.read_many([(a, 8) for a in addresses])
    return {a: (_U64.unpack(v)[0] if v else 0) for a, v in zip(addresses, values)}
