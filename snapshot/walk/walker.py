"""Rebuilding every thread's Python stack from remote memory.

The walker is version-blind: it reads offsets and behaviours from the
``Layout`` and never tests a version number.  It is also the sampling hot
path, so it reads with ``struct.unpack_from`` at compiled offsets, reads each
3.11+ data-stack chunk once instead of one read per frame, and caches
immutable code objects by address (``CodeCache``).  Every walk is bounded:
thread and frame counts are capped, pointer cycles end the walk, and every
frame and byte read is charged to the snapshot's ``WorkBudget``.

Each frame says whether an eval-loop call started with it (``is_entry``),
by the version's marker (``layout.facts.frames.entry_marker``): before 3.11
every frame, in 3.11 the frame's own ``is_entry`` byte, from 3.12 the frame
whose ``previous`` is the entry shim the eval loop pushed on the C stack.
"""
from __future__ import annotations

import struct

from layouts import Layout

from ..budget import Unlimited, WorkBudget
from ..errors import CorruptDataError
from ..process.base import Process as MemoryReader
from .chunks import CHUNK_READ, MAX_DEPTH, ThreadCopy, _Copies
from .codecache import CodeCache
from .copying import CopyStep
from .interpreters import InterpreterList
from .raw import RawFrame, RawThread, copy_frame as _copy_frame
from .tails import TailRecorder, Tails
from .threadlist import ThreadList

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


#: Frames remembered by their words (``Walker._remembered``) before the table is emptied.
MAX_REMEMBERED = 100_000
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")


class Walker(CopyStep, InterpreterList, ThreadList):
    """Walks threads and frames of one interpreter with one layout."""

    def __init__(self, memory: MemoryReader, layout: Layout, runtime_addr: int, codes: CodeCache,
                 budget: Optional[WorkBudget] = None):
        self.memory = memory
        self.layout = layout
        self.runtime_addr = runtime_addr
        self.codes = codes
        self.budget = budget if budget is not None else Unlimited()
        facts = layout.facts
        frames = facts.frames
        self.chunk_read = max(CHUNK_READ, facts.chunks.min_size)
        self.chunk_header = facts.chunks.header_size
        ts = layout.PyThreadState
        self.tstate_size = ts.size
        self.ts_next = ts.next
        self.ts_interp = ts.interp
        self.ts_thread_id = ts.thread_id
        self.ts_native_id = ts.get("native_thread_id")
        self.ts_frame = ts.get(frames.tstate_frame)
        self.ts_chunk = ts.get("datastack_chunk")
        cframe = layout.structs.get("_PyCFrame")
        self.cframe_current = cframe.current_frame if _THROUGH_CFRAME[frames.tstate_frame] and cframe else None
        self.tag_mask = ~facts.stackrefs.tag_mask & 0xFFFFFFFFFFFFFFFF
        _SETUP[frames.model](self, layout, frames)
        interp = layout.PyInterpreterState
        self.interp_threads = interp.get("threads_head", interp.get("tstate_head"))
        self._setup_interpreter_list(layout)
        self._known_tstates: Dict[int, List[int]] = {}  # interpreter -> its thread states last time
        self._frame_chains: Dict[int, List[int]] = {}
        #: 3.11+ stack-only walks: (address, previous, code word, instruction word, first slot) ->
        #: the RawFrame decoded from those words.  A sampler meets the same frames pass after
        #: pass (all but the innermost few are unchanged), so a remembered frame costs the words'
        #: reads and one lookup instead of its code object, line and model frame.
        self._remembered: Dict[tuple, RawFrame] = {}
        #: 3.11+ stack-only walks: what lies below a thread's innermost frame (``tails``).
        self._tails = Tails()
        self._tail_used = None  # the tail the last interpreter-frame walk took or recorded, if any
        #: Stack-only decodes: thread state address -> (its raw words, current frame, the copies'
        #: bytes, the RawThread they gave), from the last pass (``_steady_thread``).
        self._steady: Dict[int, tuple] = {}
        self.generation = 0  # counts ``forget_frames``: what was decoded before may name stale code
        self._outside_reads = 0  # reads of frame memory outside the copies in the current walk
        self._prefetched = False  # whether a decode read its code objects in one batch yet
        #: Set by the reader for passes that do not pause the target: a chain that loops, or (3.12+)
        #: does not end at an eval loop's entry shim, was then read while it changed (a generator just
        #: gave up its frame), and raises ``CorruptDataError`` to be read again.  Paused, it is the truth.
        self.unpaused = False
        #: Set by the reader for snapshots (not samples): nothing is remembered for a next walk
        #: (frames by their words, tails, last pass's threads).  Why: a one-shot dump walked once
        #: and still kept those books, about a sixth of its byte code.
        self.one_shot = False

    def _setup_frame_objects(self, layout: Layout, frames) -> None:
        fo = layout.PyFrameObject
        self.if_words = None  # (no interpreter frames: ``newest_frame_key`` has none to read)
        self.fo_back, self.fo_code, self.fo_lasti = fo.f_back, fo.f_code, fo.f_lasti
        self.fo_localsplus = fo.f_localsplus
        self.fo_globals = fo.f_globals
        self.frame_header = fo.f_localsplus + 8
        self.lasti_unit = frames.lasti_unit
        self._copy_threads_of = self._copy_frame_objects
        self._decode_stack = self._decode_frame_objects

    def _setup_interpreter_frames(self, layout: Layout, frames) -> None:
        iframe = layout._PyInterpreterFrame
        self.if_code = iframe.fields[frames.code_field].offset
        self.if_previous = iframe.previous
        self.if_instr = iframe.fields[frames.instr_field].offset
        self.if_owner = iframe.owner
        # code, previous and instruction words in one unpack (they come in that order in every
        # layout with interpreter frames; a layout that orders them otherwise reads them apart)
        ordered = self.if_code < self.if_previous < self.if_instr
        self.if_words = struct.Struct("<%dxQ%dxQ%dxQ" % (
            self.if_code, self.if_previous - self.if_code - 8, self.if_instr - self.if_previous - 8)) if ordered else None
        self.if_is_entry = iframe.get("is_entry")
        self.if_globals = iframe.f_globals
        self.frame_header = iframe.localsplus
        self.skip_owner_from = frames.skip_owner_from if frames.skip_owner_from is not None else 256
        uses_shim, self.entry_field = _ENTRY_MARKERS[frames.entry_marker]
        # 256 never matches an owner byte.
        self.entry_shim_owner = frames.entry_shim_owner if uses_shim else 256
        self._copy_threads_of = self._copy_interpreter_frames
        self._decode_stack = self._decode_interpreter_frames

    # -- stacks ----------------------------------------------------------------
    def walk_threads(self, tstates: List[Tuple[int, bytes]], with_locals: bool) -> List[RawThread]:
        """All threads' stacks (copy and decode at once: for callers that stay paused throughout)."""
        return self.decode_threads(self.copy_threads(tstates), with_locals)

    def copy_threads(self, tstates: List[Tuple[int, bytes]], follow: bool = True) -> List[ThreadCopy]:
        """What a pause must copy of every thread's frames, and nothing else.

        Only ``previous`` links are followed here, through the copies made so
        far; the frames they lead to outside them are read for all threads at
        once, a round at a time, so the reads grow with the depth of the
        chain that leaves the copies (one round for a shim frame or a
        generator), not with the number of threads.  Code objects, lines,
        slots and locals are decoded later by ``decode_threads``, from these
        copies, with the target running again: what the pause costs never
        depends on locals being asked for.  ``follow=False`` (a sampler that does not pause)
        copies the newest chunks and thread states only: the decoding reads the rest.
        """
        return self._copy_threads_of(tstates, follow)

    def decode_threads(self, copies: List[ThreadCopy], with_locals: bool, some: bool = False) -> List[RawThread]:
        """Stacks from ``copy_threads``'s copies, with every cached code object they used checked once.

        The first decode after attaching reads the code objects the copies name in one batch
        (``CodeCache.prefetch``); later ones meet few new code objects and read them as met.
        ``some``: these are only the threads of the pass whose bytes moved (``steadypass``): the
        others keep what the steady table holds for them."""
        self.codes.begin()
        if not self._prefetched:
            self._prefetched = True
            self.codes.prefetch(address for copy in copies for address in self._code_addresses(copy))
        if with_locals or self.one_shot:
            threads = [self._decode_thread(copy, with_locals) for copy in copies]
        else:
            if some:
                steady = self._steady
            else:
                steady, self._steady = self._steady, {}
            threads = [self._steady_thread(copy, steady) for copy in copies]
        stale = set(self.codes.stale_hits())
        if stale:
            self.forget_frames()
            for index, thread in enumerate(threads):
                # a new RawThread (the old one may be a steady thread's, handed out before)
                thread = threads[index] = RawThread(thread.tstate_addr, thread.thread_id, thread.native_id,
                                                    thread.frames, thread.truncated, None)
                kept = []
                for frame in thread.frames:
                    if frame.code_addr in stale:
                        code = self.codes.get(frame.code_addr)
                        if code is None:
                            continue
                        if code.code_offset != frame.code.code_offset:
                            frame.offset += frame.code.code_offset - code.code_offset
                        frame.code, frame.line = code, code.line_for(frame.offset)
                        frame.model = None
                    kept.append(frame)
                thread.frames = kept
        return threads

    def forget_frames(self) -> None:
        """Drop the remembered frames and tails (a cached code object was found stale)."""
        self._remembered = {}
        self._tails.clear()
        self._steady = {}
        self.generation += 1

    def _steady_thread(self, copy: ThreadCopy, last_pass: Dict[int, tuple]) -> RawThread:
        """A stack-only decode that hands back last pass's RawThread when nothing it was decoded
        from changed: the same thread state words, current frame and copied frame memory, and
        the remembered tail's own checks still holding.  Why: most threads of a sampled process
        do not run between two passes (they wait for the GIL, a lock, I/O), and a walk from the
        same bytes gives the same frames, so comparing the bytes (a few ``memcmp`` in C) replaces
        the walk.  A walk that read frame memory outside the copies above its tail is not reused
        (those reads are not in what is compared); the tail's own reads outside are read again.

        The code objects of a reused thread are not re-checked each pass (``stale_hits``): its
        frames, unchanged in every byte, still hold their references to them, so none of them
        was freed for another to take its address; the periodic ``CodeCache.revalidate`` still
        covers them."""
        key = copy.memory.segments if type(copy.memory) is _Copies else copy.memory
        last = last_pass.get(copy.tstate_addr)
        if (last is not None and last[0] == copy.raw and last[1] == copy.frame and last[2] == key
                and (last[3].tail is None or last[3].tail.holds_outside(self.memory.read))):
            self._steady[copy.tstate_addr] = last
            return last[3]
        self._outside_reads = 0
        thread = self._decode_thread(copy, False)
        if not self._outside_reads and not thread.truncated:
            self._steady[copy.tstate_addr] = (copy.raw, copy.frame, key, thread)
        else:
            self._steady.pop(copy.tstate_addr, None)  # (a table kept across the pass: ``some``)
        return thread

    def newest_frame_key(self, data: bytes, base: int) -> Optional[tuple]:
        """Everything a stack-only decode of the Python frame at ``base`` of a data-stack chunk
        copy reads of that frame: (code address, code word, previous, instruction pointer, entry
        byte, first local where the code needs it).  None for a shim frame, a code object not
        cached, a copy too short, or frame objects (before 3.11).  Why: with the frames below it
        known unchanged, equal keys give equal stacks (``steadypass`` keeps them by key)."""
        header = self.frame_header
        words = self.if_words
        if (words is None or base < 0 or base + header + 8 > len(data)
                or data[base + self.if_owner] >= self.skip_owner_from):
            return None
        code_word, previous, instr = words.unpack_from(data, base)
        code_addr = code_word & self.tag_mask
        code = self.codes.peek(code_addr)
        if code is None:
            return None
        entry = data[base + self.if_is_entry] if self.entry_field else 0
        first = _U64.unpack_from(data, base + header)[0] if code.needs_first_local else 0
        return code_addr, code_word, previous, instr, entry, first

    def codes_hold(self, addresses) -> bool:
        """Whether the cached code objects at ``addresses`` are still those code objects
        (``CodeCache.still_hold``); if not, the remembered frames are dropped."""
        if self.codes.still_hold(addresses):
            return True
        self.forget_frames()
        return False

    def _decode_thread(self, copy: ThreadCopy, with_locals: bool) -> RawThread:
        raw = copy.raw
        thread_id = _U64.unpack_from(raw, self.ts_thread_id)[0]
        native_id = _U64.unpack_from(raw, self.ts_native_id)[0] if self.ts_native_id is not None else None
        self._tail_used = None
        frames, truncated = self._decode_stack(copy.frame, copy.memory, with_locals)
        return RawThread(copy.tstate_addr, thread_id, native_id, frames, truncated, self._tail_used)

    def _decode_frame_objects(self, address: int, copies: Dict[int, bytes],
                              with_locals: bool) -> Tuple[List[RawFrame], bool]:
        """3.10 and older: decode the ``f_back`` chain from the pause's copies (a frame missing
        from them is read from the target as it is now)."""
        frames: List[RawFrame] = []
        seen = set()
        codes = self.codes
        read = self.memory.read
        header = self.frame_header
        start = address
        chain = []
        while address:
            if address in seen or len(frames) >= MAX_DEPTH:
                return frames, True
            seen.add(address)
            chain.append(address)
            data = copies.get(address)
            if data is None:
                self.budget.charge(header, 1)
                self._outside_reads += 1
                data = read(address, header)
            code_addr = _U64.unpack_from(data, self.fo_code)[0]
            code = codes.get(code_addr)
            if code is None:
                return frames, True
            lasti = _I32.unpack_from(data, self.fo_lasti)[0]
            offset = lasti * self.lasti_unit if lasti >= 0 else 0
            line = code._lines.get(offset)  # line_for's memo, inlined: this runs for every frame
            if line is None:
                line = code.line_for(offset)
            slots = None
            if with_locals or code.needs_first_local:
                count = code.nslots if with_locals else 1
                if count <= 1:
                    slots = (_U64.unpack_from(data, self.fo_localsplus)[0],) if count == 1 else ()
                elif count <= 100000:
                    end = self.fo_localsplus + 8 * count
                    if end <= len(data):
                        slots = struct.unpack_from("<%dQ" % count, data, self.fo_localsplus)
                    else:
                        self.budget.charge(8 * count)
                        self._outside_reads += 1
                        slot_data = read(address + self.fo_localsplus, 8 * count)
                        slots = struct.unpack_from("<%dQ" % count, slot_data)
            globals_addr = _U64.unpack_from(data, self.fo_globals)[0] if with_locals else 0
            # Before 3.11 every Python call runs its own eval loop: every frame is an entry frame.
            frames.append(RawFrame(code, line, address, slots, globals_addr, code_addr, offset, True))
            address = _U64.unpack_from(data, self.fo_back)[0]
        if len(self._frame_chains) > 256:
            self._frame_chains.clear()
        self._frame_chains[start] = chain
        return frames, False

    def _decode_interpreter_frames(self, address: int, copies: "_Copies",
                                   with_locals: bool) -> Tuple[List[RawFrame], bool]:
        return self._walk_interpreter_frames(address, copies, with_locals)

    def _current_frame(self, raw: bytes) -> int:
        pointer = _U64.unpack_from(raw, self.ts_frame)[0]
        if self.cframe_current is None or not pointer:
            return pointer
        return _U64.unpack(self.memory.read(pointer + self.cframe_current, 8))[0]

    def _walk_interpreter_frames(self, address: int, chunks: Optional[_Copies],
                                 with_locals: bool) -> Tuple[List[RawFrame], bool]:
        frames: List[RawFrame] = []
        if not address:
            return frames, False
        try:
            return self._interpreter_frames(address, chunks, with_locals, frames)
        finally:
            self.budget.charge(self.frame_header * len(frames), len(frames))

    def _interpreter_frames(self, address: int, chunks: Optional[_Copies], with_locals: bool,
                            frames: List[RawFrame]) -> Tuple[List[RawFrame], bool]:
        seen = set()
        codes_get = self.codes.get
        unpack = _U64.unpack_from
        mask = self.tag_mask
        header = self.frame_header
        skip_from = self.skip_owner_from
        shim_owner = self.entry_shim_owner
        marked_by_shim = shim_owner != 256
        off_is_entry = self.if_is_entry if self.entry_field else None
        last_python = False  # whether the frame visited just before was a Python frame
        off_previous, off_owner, off_code, off_instr = self.if_previous, self.if_owner, self.if_code, self.if_instr
        words = self.if_words.unpack_from if self.if_words is not None else None
        chunk_start = chunk_end = 0
        chunk_data = b""
        truncated = False
        # Stack-only walks look each frame up by its words first (``_remembered``).  A remembered
        # frame is shared between walks, so it is copied before it is changed; one that a shim
        # below it marked as an entry frame is kept marked only if that shim is still there.
        remembered = None if with_locals or self.one_shot else self._remembered
        fresh: List[Tuple[tuple, RawFrame]] = []  # frames decoded by this walk, remembered at its end
        last_fresh = False
        unconfirmed = -1  # index of a remembered shim-marked frame whose shim is not seen yet
        # Below the innermost Python frame, a stack-only walk with copies first tries the tail
        # remembered from that frame's caller (``tails``), and otherwise records a new one.
        tails = self._tails if remembered is not None and chunks is not None else None
        recorder = None
        tail_from = 0
        shim_first = None
        if remembered is not None:
            if len(remembered) > MAX_REMEMBERED:
                remembered = self._remembered = {}
            peek = self.codes.peeker()
            hit = self.codes.hit_recorder()
        while address:
            # Shim frames are not counted in ``frames``: ``seen`` bounds them too.
            if address in seen or len(frames) >= MAX_DEPTH or len(seen) >= 2 * MAX_DEPTH:
                if address in seen and self.unpaused:
                    raise CorruptDataError("thread frame chain loops at 0x%x: read while it changed" % address)
                truncated = True
                break
            if tails is not None and len(frames) == 1 and last_python:
                tail = tails.get(address)
                if (tail is not None and len(seen) + len(tail.addresses) < 2 * MAX_DEPTH
                        and seen.isdisjoint(tail.addresses) and tail.holds(chunks, self.memory.read)):
                    if marked_by_shim and frames[0].is_entry != tail.shim_first:
                        if last_fresh:
                            frames[0].is_entry = tail.shim_first
                        else:
                            frames[0] = _copy_frame(frames[0], tail.shim_first)
                    unconfirmed = -1
                    frames.extend(tail.frames)
                    self._tail_used = tail
                    break
                tails = None  # tried once per walk; this walk records the tail instead
                recorder, tail_from = TailRecorder(), address
            seen.add(address)
            if chunk_start <= address and address + header <= chunk_end:
                data, base, in_chunk = chunk_data, address - chunk_start, True
            else:
                found = chunks.find(address, header) if chunks is not None else None
                if found is None:
                    self._outside_reads += 1
                    data, base, in_chunk = self.memory.read(address, header), 0, False
                else:
                    chunk_data, base, chunk_start = found
                    chunk_end = chunk_start + len(chunk_data)
                    data, in_chunk = chunk_data, True
            if recorder is not None:
                if in_chunk:
                    recorder.visit(address, header + 8 if base + header + 8 <= len(data) else header,
                                   chunk_start, data)
                else:
                    recorder.visit(address, header, -1, data)
            if words is not None:
                code_word, previous, instr = words(data, base)
            else:
                code_word = unpack(data, base + off_code)[0]
                previous = unpack(data, base + off_previous)[0]
                instr = unpack(data, base + off_instr)[0]
            owner = data[base + off_owner]
            if shim_first is None and recorder is not None:
                shim_first = owner == shim_owner
            if unconfirmed >= 0:
                if owner != shim_owner:
                    frames[unconfirmed] = _copy_frame(frames[unconfirmed], False)
                unconfirmed = -1
            if owner >= skip_from:
                if owner == shim_owner and last_python and not frames[-1].is_entry:
                    # 3.12+: the eval loop's entry shim; the frame above it started that call.
                    if remembered is not None and not last_fresh:
                        frames[-1] = _copy_frame(frames[-1], True)
                    else:
                        frames[-1].is_entry = True
                last_python = False
                address = previous
                continue
            code_addr = code_word & mask
            entry_byte = data[base + off_is_entry] if off_is_entry is not None else 0
            first_in_copy = in_chunk and base + header + 8 <= len(data)
            if remembered is not None:
                known = peek(code_addr)
                first = unpack(data, base + header)[0] if (
                    first_in_copy and known is not None and known.needs_first_local) else 0
                frame = remembered.get((address, previous, code_word, instr, first, entry_byte))
                if frame is not None:
                    hit(code_addr)
                    if marked_by_shim and frame.is_entry:
                        unconfirmed = len(frames)
                    frames.append(frame)
                    last_python, last_fresh = True, False
                    address = previous
                    continue
            code = codes_get(code_addr)
            if code is None:
                # Not a code object (3.13+ shim frames carry None): skip it.
                last_python = False
                address = previous
                continue
            last_python = True
            offset = instr - code_addr - code.code_offset
            if not 0 <= offset < (1 << 30):
                offset = 0
            line = code._lines.get(offset)  # line_for's memo, inlined: this runs for every frame
            if line is None:
                line = code.line_for(offset)
            slots = None
            count = code.nslots if with_locals else (1 if code.needs_first_local else 0)
            if count and count <= 100000:
                start = base + header
                if in_chunk and start + 8 * count <= len(data):
                    slots = struct.unpack_from("<%dQ" % count, data, start)
                else:
                    self._outside_reads += 1
                    slot_data = self.memory.read(address + header, 8 * count)
                    if recorder is not None:
                        recorder.visit(address + header, 8 * count, -1, slot_data)
                    slots = struct.unpack_from("<%dQ" % count, slot_data)
            globals_addr = unpack(data, base + self.if_globals)[0] if with_locals else 0
            frame = RawFrame(code, line, address, slots, globals_addr, code_addr, offset, bool(entry_byte))
            frames.append(frame)
            if remembered is not None:
                last_fresh = True
                if not code.needs_first_local:
                    fresh.append(((address, previous, code_word, instr, 0, entry_byte), frame))
                elif first_in_copy and slots:
                    fresh.append(((address, previous, code_word, instr, slots[0], entry_byte), frame))
            address = previous
        else:
            if last_python and marked_by_shim and self.unpaused:
                raise CorruptDataError("thread frame chain ends at a Python frame (0x%x): read while it changed"
                                       % frames[-1].frame_addr)
        if unconfirmed >= 0:
            frames[unconfirmed] = _copy_frame(frames[unconfirmed], False)
        for key, frame in fresh:
            remembered[key] = frame
        if recorder is not None and not truncated:
            below = frames[1:]
            # the thread's frames below its newest are this tail's from now on: its RawThread names it
            tail = self._tail_used = recorder.tail(below, bool(shim_first))
            self._tails.keep(tail_from, tail)
        return frames, truncated


#: facts.frames.tstate_frame -> whether the thread state points at a _PyCFrame holding the frame.
_THROUGH_CFRAME = {"frame": False, "cframe": True, "current_frame": False}
#: facts.frames.entry_marker -> (marked by the shim below the frame, marked by the frame's is_entry byte);
#: "every_frame" is the frame-object walk, which marks every frame itself.
_ENTRY_MARKERS = {"every_frame": (False, False), "is_entry_field": (False, True), "above_shim": (True, False)}
#: facts.frames.model -> how the walker reads frames.
_SETUP = {"frame_object": Walker._setup_frame_objects, "interpreter_frame": Walker._setup_interpreter_frames}

