"""The walker's pause step: copy every thread's raw frame words in a few batched reads.

Why its own module: this is the only part of a walk that runs while the target
is stopped, so it does nothing but copy (no decoding, no per-thread Python
objects beyond the copies); ``Walker.decode_threads`` turns the copies into
frames after the detach.
"""
from __future__ import annotations

import struct

from ..errors import MemoryReadError
from .chunks import MAX_DEPTH, ThreadCopy, _Copies

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Tuple


#: Bytes copied past the current frame's start: its header and the slots of most code objects
#: (a frame whose cached code needs more completes the copy in one more batched read, inside the pause).
FRAME_ROOM = 512
#: Bytes copied of a frame found outside the copied chunks (a shim frame on the C stack, a
#: generator's frame, a frame object before 3.11) past its header: its first slots.
OUTSIDE_ROOM = 256
#: Rounds of batched reads a pause makes to follow frames outside the copies (each round
#: serves every thread; a chain leaving the copies more often than this is read when decoded).
MAX_COPY_ROUNDS = 512

_U64 = struct.Struct("<Q")


def outside_size(address: int, header: int) -> int:
    """How much to copy of a frame found outside the chunk copies: its header and up to
    ``OUTSIDE_ROOM`` bytes of slots, but not into the next page when the header ends before it
    (a frame at the top of a C stack or a heap mapping: the page after may not be mapped, and a
    read that crosses into it fails whole)."""
    size = header + OUTSIDE_ROOM
    page_end = (address + header + 4095) & ~4095
    return max(header, min(size, page_end - address))


class CopyStep:
    """Mixed into ``Walker``: the copying half of a walk (the walker's fields and layout)."""

    def _used_prefix(self, chunk: int, frame: int) -> int:
        """How much of the newest chunk to copy: up to the current frame plus room for its
        header and slots (a pause copies what the stack uses, not the whole 16 KiB chunk).
        Rounded up to a KiB, so a stack a few frames deeper than the last pass's still fits the
        range the pass re-reads (``ProcessMemory.begin_pass``)."""
        if chunk < frame < chunk + self.chunk_read:
            return min(self.chunk_read, ((frame - chunk) | 1023) + 1 + FRAME_ROOM)
        return self.chunk_read

    def _copy_interpreter_frames(self, tstates: List[Tuple[int, bytes]], follow: bool = True) -> List[ThreadCopy]:
        """3.11+: the newest chunk of every thread up to its current frame in one batched read,
        then rounds of batched reads for what the ``previous`` links reach outside the copies
        (with the next older chunk, which may hold it)."""
        frames = [_U64.unpack_from(raw, self.ts_frame)[0] for _, raw in tstates]
        if self.cframe_current is not None:
            pointers = self.memory.read_many([(p + self.cframe_current, 8) if p else (0, 0) for p in frames])
            frames = [_U64.unpack(v)[0] if v else 0 for v in pointers]
        header = self.frame_header
        if self.ts_chunk is not None:
            chunk_addrs = [_U64.unpack_from(raw, self.ts_chunk)[0] for _, raw in tstates]
        else:
            chunk_addrs = [0] * len(tstates)
        requests = [(c, self._used_prefix(c, f)) if c and f else (0, 0) for c, f in zip(chunk_addrs, frames)]
        self.budget.charge(sum(size for _, size in requests))
        chunk_data = self.memory.read_many(requests)
        result = []
        pending = []
        for (addr, raw), frame, chunk, data, request in zip(tstates, frames, chunk_addrs, chunk_data, requests):
            copies = _Copies()
            window = None
            if chunk and data is not None:
                copies.add_chunk(chunk, data, self.chunk_header)
                if chunk < frame < chunk + len(data):
                    window = (request, frame - chunk)
            result.append(ThreadCopy(addr, raw, frame, copies, window))
            if frame and follow:
                pending.append((copies, frame))
        if not follow:
            return result
        off_previous = self.if_previous
        for _ in range(MAX_COPY_ROUNDS):
            wanted = []
            for copies, address in pending:
                address = copies.chase(address, off_previous, header)
                if address:
                    wanted.append((copies, address, copies.older))
            if not wanted:
                break
            frame_size = header + OUTSIDE_ROOM
            requests = [(address, outside_size(address, header)) for _, address, _ in wanted]
            olders = [older for _, _, older in wanted if older]
            requests += [(older, self.chunk_read) for older in olders]
            self.budget.charge(frame_size * len(wanted) + self.chunk_read * len(olders), len(wanted))
            datas = self.memory.read_many(requests)
            older_datas = iter(datas[len(wanted):])
            pending = []
            for (copies, address, older), frame_data in zip(wanted, datas):
                if older:
                    older_data = next(older_datas)
                    size = copies.add_chunk(older, older_data, self.chunk_header)
                    if size is not None and size > len(older_data):
                        # a chunk larger than the first read (a frame with thousands of slots)
                        self.budget.charge(size)
                        try:
                            whole = self.memory.read(older, size)
                        except MemoryReadError:
                            whole = None
                        if whole is not None:
                            copies.segments[-1] = (older, older + size, whole)
                if frame_data is None:
                    try:
                        frame_data = self.memory.read(address, header)
                    except MemoryReadError:
                        frame_data = None
                if frame_data is not None:
                    copies.add(address, frame_data)
                    copies.outside.append(address)
                    pending.append((copies, address))
                elif older:
                    pending.append((copies, address))  # it may be in the older chunk just copied
                # else: unreadable; the decode reads it again and reports it
        self._complete_slots(result)
        return result

    def copy_again(self, copy: ThreadCopy, data: bytes) -> ThreadCopy:
        """``copy`` with its newest chunk's bytes as read now (its thread state words and current
        frame unchanged): what a pass that found only that window changed decodes."""
        copies = _Copies()
        copies.add_chunk(copy.window[0][0], data, self.chunk_header)
        return ThreadCopy(copy.tstate_addr, copy.raw, copy.frame, copies, copy.window)

    def _complete_slots(self, result: List[ThreadCopy]) -> None:
        """Copy the rest of the slots of frames cut short by the copies (the newest frame of
        each thread, frames copied on their own) whose code object is cached and has more
        slots than were copied: one batched read, made with or without locals asked for."""
        header = self.frame_header
        peek = self.codes.peek
        unpack = _U64.unpack_from
        mask = self.tag_mask
        wanted = []
        for copy in result:
            copies = copy.memory
            for address in [copy.frame] + copies.outside if copy.frame else ():
                found = copies.find(address, header)
                if found is None:
                    continue
                data, base, start = found
                if data[base + self.if_owner] >= self.skip_owner_from:
                    continue
                code = peek(unpack(data, base + self.if_code)[0] & mask)
                if code is None:
                    continue
                need = header + 8 * code.nslots
                if base + need > len(data) and need <= header + 8 * 100000:
                    wanted.append((copies, address, need))
        if not wanted:
            return
        self.budget.charge(sum(need for _, _, need in wanted), len(wanted))
        for (copies, address, need), data in zip(wanted, self.memory.read_many([(a, n) for _, a, n in wanted])):
            if data is not None:
                copies.segments.insert(0, (address, address + need, data))  # found before the short copy

    def _copy_frame_objects(self, tstates: List[Tuple[int, bytes]], follow: bool = True) -> List[ThreadCopy]:
        """3.10 and older: heap frame objects linked by ``f_back``.  Each thread's chain of last
        time is re-read first, all threads in one batched call (frame objects are reused, so it
        mostly still holds); then rounds of batched reads follow the links past it.  Each copy
        takes the frame's first slots with it."""
        size = self.frame_header + OUTSIDE_ROOM
        result = []
        requests = []
        for addr, raw in tstates:
            head = _U64.unpack_from(raw, self.ts_frame)[0]
            copy = ThreadCopy(addr, raw, head, {})
            result.append(copy)
            for frame_addr in self._frame_chains.get(head, ()) if head else ():
                requests.append((copy, frame_addr))
        if not follow:
            return result
        off_back = self.fo_back
        pending = [[copy, copy.frame, 0] for copy in result if copy.frame]
        for _ in range(MAX_COPY_ROUNDS + 1):
            if requests:
                self.budget.charge(size * len(requests), len(requests))
                for (copy, frame_addr), data in zip(requests, self.memory.read_many(
                        [(a, outside_size(a, self.frame_header)) for _, a in requests])):
                    if data is None:
                        try:
                            data = self.memory.read(frame_addr, self.frame_header)
                        except MemoryReadError:
                            data = None  # kept as unreadable: not asked again in this pause
                    copy.memory[frame_addr] = data
            requests = []
            still = []
            for item in pending:
                copy, address, steps = item
                frames = copy.memory
                while address and steps < MAX_DEPTH:
                    data = frames.get(address)
                    if data is None:
                        break
                    address = _U64.unpack_from(data, off_back)[0]
                    steps += 1
                if address and steps < MAX_DEPTH and address not in frames:
                    item[1], item[2] = address, steps
                    requests.append((copy, address))
                    still.append(item)
            pending = still
            if not requests:
                break
        self._complete_frame_objects(result)
        return result

    def _complete_frame_objects(self, result: List[ThreadCopy]) -> None:
        """Copy the rest of the slots of frame objects whose cached code has more than the
        first copy took (one batched read, made with or without locals asked for)."""
        peek = self.codes.peek
        off_code, base = self.fo_code, self.fo_localsplus
        wanted = []
        for copy in result:
            for address, data in copy.memory.items():
                if data is None:
                    continue
                code = peek(_U64.unpack_from(data, off_code)[0])
                if code is not None and base + 8 * code.nslots > len(data) and code.nslots <= 100000:
                    wanted.append((copy, address, base + 8 * code.nslots))
        if not wanted:
            return
        self.budget.charge(sum(need for _, _, need in wanted), len(wanted))
        for (copy, address, _), data in zip(wanted, self.memory.read_many([(a, n) for _, a, n in wanted])):
            if data is not None:
                copy.memory[address] = data

    def _code_addresses(self, copy: ThreadCopy) -> List[int]:
        """The code objects of the frames ``copy`` holds, in chain order (no read: only what
        the pause copied; frames outside the copies are met by the walk itself)."""
        memory = copy.memory
        if isinstance(memory, dict):  # frame objects (3.10 and older)
            return [_U64.unpack_from(data, self.fo_code)[0] for data in memory.values()
                    if len(data) >= self.fo_code + 8]
        out: List[int] = []
        if memory is None:
            return out
        address, header, seen = copy.frame, self.frame_header, 0
        unpack, mask = _U64.unpack_from, self.tag_mask
        while address and seen < 2 * MAX_DEPTH:
            found = memory.find(address, header)
            if found is None:
                break
            data, base, _ = found
            if data[base + self.if_owner] < self.skip_owner_from:
                out.append(unpack(data, base + self.if_code)[0] & mask)
            address = unpack(data, base + self.if_previous)[0]
            seen += 1
        return out
