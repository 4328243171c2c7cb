"""``CoreProcess``: an ELF core file (kernel or gcore) plus the binaries on disk, as a ``Process``.

A core holds what the process had written: heap, stacks, ``.data``/``.bss``
(``_PyRuntime`` among them), and the first page of every mapped ELF file
(its header and build-id note).  It leaves out what can be read again from
the files: code and read-only data.  So a read is served from the core where
a ``PT_LOAD`` has file bytes (``p_filesz``), else from the file that
``NT_FILE`` says was mapped there, at ``page_offset * page_size`` (the
kernel counts in 4096-byte pages, gcore in bytes) plus the distance into the
mapping.  The core's own structure (notes, threads, argv) is ``corefile``;
which local file stands for a mapped one, checked by build-id, is
``corebinaries``; this module joins them into the ``Process`` the engine reads.
"""
from __future__ import annotations

import bisect
import os
from contextlib import contextmanager

from .. import elf
from ..errors import MemoryReadError
from .base import FILES, REGISTERS, MappedFile, MemoryMap, OSThread, Registers
from .corebinaries import BinaryFinder, BinaryNotFoundError, BuildIdMismatchError, Resolved
from .corefile import CoreFile, CoreFileError, CoreTruncatedError, FileEntry, NotACoreError, perms

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import BinaryIO, Callable, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple


#: Largest single read accepted (remote sizes are untrusted), as for live processes.
MAX_READ = 64 << 20
#: Bytes at a thread's stack pointer checked for the zeros of unreadable stack memory.
STACK_PROBE = 64


class CoreProcess:
    """A process as an ELF core file recorded it (see the module docstring)."""

    capabilities: FrozenSet[str] = frozenset({REGISTERS, FILES})

    def __init__(self, core_path: str, search_path: Sequence[str] = (), executable: Optional[str] = None):
        self.core_path = core_path
        self._core = core = CoreFile(core_path)
        self._binaries = BinaryFinder(core, search_path, executable)
        self.search_path = self._binaries.search_path
        self.executable_override = executable
        self.compression = core.compression
        self.local_core_path = core.local_path
        self.core_size = core.size
        self.pid = core.pid
        #: The signal that ended the process (kernel cores: the crashing thread's), 0 if none.
        self.signal = core.signal
        #: The thread the core names first (kernel cores: the one that received the signal).
        self.signalled_tid = core.signalled_tid
        # The read path's tables, held here so a read costs no extra lookups.
        self._map = core.map
        self._loads, self._starts, self._file_ends, self._offsets = core.loads, core.starts, core.file_ends, \
            core.offsets
        self._entries = core.entries
        self._by_path = core.by_path
        self._prstatus = core.prstatus
        self._registers = core.registers
        self._running = core.running
        self._exe_path = core.executable_path
        self._files: Dict[str, BinaryIO] = {}
        self._perms: Dict[int, str] = {}
        self._argv: Optional[List[str]] = None

    # -- memory -----------------------------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        if size <= 0 or size > MAX_READ or address <= 0:
            if size == 0 and address > 0:
                return b""
            raise MemoryReadError(address, size, "refusing an implausible read")
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address + size <= self._file_ends[i]:
            offset = self._offsets[i] + address - self._starts[i]
            return self._map[offset:offset + size]
        return self._read_pieces(address, size)

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        results: List[Optional[bytes]] = []
        starts, ends, offsets, data = self._starts, self._file_ends, self._offsets, self._map
        for address, size in requests:
            i = bisect.bisect_right(starts, address) - 1
            if 0 < size <= MAX_READ and address > 0 and i >= 0 and address + size <= ends[i]:
                offset = offsets[i] + address - starts[i]
                results.append(data[offset:offset + size])
                continue
            try:
                results.append(self.read(address, size))
            except MemoryReadError:
                results.append(None)
        return results

    def _read_pieces(self, address: int, size: int) -> bytes:
        """A read that leaves the core's bytes: across segments, or into a file on disk."""
        pieces = []
        at, left = address, size
        while left:
            i = bisect.bisect_right(self._starts, at) - 1
            if i >= 0 and at < self._file_ends[i]:
                n = min(left, self._file_ends[i] - at)
                offset = self._offsets[i] + at - self._starts[i]
                pieces.append(self._map[offset:offset + n])
            else:
                entry = self._core.entry_at(at)
                if entry is None:
                    in_load = i >= 0 and at < self._starts[i] + self._loads[i].memsz
                    raise MemoryReadError(address, size, "0x%x is %s" % (
                        at, "in a mapping the core does not contain" if in_load else "not mapped in the core"))
                n = min(left, entry.end - at)
                if i + 1 < len(self._starts) and self._starts[i + 1] < at + n:
                    n = self._starts[i + 1] - at  # the core's bytes win where it has them
                pieces.append(self._file_bytes(entry, entry.offset + at - entry.start, n, address, size))
            at += n
            left -= n
        return b"".join(pieces)

    def _file_bytes(self, entry: FileEntry, offset: int, size: int, address: int, total: int) -> bytes:
        resolved = self._resolve(entry.path)
        if resolved.error is not None:
            error = resolved.error
            raise type(error)("could not read %d bytes at 0x%x: %s" % (total, address, error.message),
                              error.path, address, total)
        handle = self._files.get(resolved.local_path)
        if handle is None:
            try:
                handle = open(resolved.local_path, "rb")
            except OSError as e:
                raise MemoryReadError(address, total, "cannot open %s: %s" % (resolved.local_path, e.strerror)) from None
            self._files[resolved.local_path] = handle
        if not 0 <= offset < 1 << 62:
            raise MemoryReadError(address, total, "implausible offset 0x%x in %s" % (offset, resolved.local_path))
        try:
            data = os.pread(handle.fileno(), size, offset)
        except OSError as e:
            raise MemoryReadError(address, total, "reading %s: %s" % (resolved.local_path, e.strerror)) from None
        if len(data) < size:
            # Past the end of the file: the rest of its last page reads as zeros, beyond it faults.
            file_size = os.fstat(handle.fileno()).st_size
            if offset + size > (file_size + 0xFFF) & ~0xFFF:
                raise MemoryReadError(address, total, "past the end of %s" % resolved.local_path)
            data += bytes(size - len(data))
        return data

    def core_bytes(self, address: int, size: int) -> Optional[bytes]:
        """Bytes held by the core itself (never from a file), or None."""
        return self._core.bytes_at(address, size)

    # -- files -------------------------------------------------------------------------
    def _resolve(self, path: str) -> Resolved:
        return self._binaries.resolve(path)

    def binary_error(self, path: str) -> Optional[BinaryNotFoundError]:
        """Why the file mapped at ``path`` cannot be used (missing, other build), or None."""
        return self._resolve(path).error

    def open_file(self, path: str) -> BinaryIO:
        resolved = self._resolve(path)
        if resolved.error is not None:
            raise resolved.error
        try:
            return open(resolved.local_path, "rb")
        except OSError as e:
            raise BinaryNotFoundError("cannot open %s: %s" % (resolved.local_path, e.strerror), path) from None

    def mapped_files(self, only: Optional[Callable[[str], bool]] = None) -> List[MappedFile]:
        """Every ELF file the core maps (an unresolved one has ``local_path`` ''); ``only``: those
        whose path it accepts (the others are not looked for on this machine)."""
        result = []
        seen = set()
        for entry in self._entries:
            if entry.path in seen or entry.offset != 0:
                continue
            seen.add(entry.path)
            if only is not None and not only(entry.path):
                continue
            resolved = self._resolve(entry.path)
            if not resolved.elf_type:
                continue
            ranges = self._by_path[entry.path]
            bias = 0 if resolved.elf_type == elf.ET_EXEC else entry.start - resolved.first_vaddr
            result.append(MappedFile(entry.path, min(e.start for e in ranges), max(e.end for e in ranges), bias,
                                     resolved.build_id, resolved.local_path))
        result.sort(key=lambda f: f.start)
        return result

    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        by_start = {e.start: e for e in self._entries}
        result = []
        load_starts = set()
        for seg in self._loads:
            load_starts.add(seg.vaddr)
            entry = by_start.get(seg.vaddr)
            result.append(MemoryMap(seg.vaddr, seg.vaddr + seg.memsz, perms(seg.flags),
                                    entry.offset if entry else 0, entry.path if entry else ""))
        for entry in self._entries:
            if entry.start not in load_starts:
                # gcore leaves read-only file mappings out entirely: their flags come from the file.
                result.append(MemoryMap(entry.start, entry.end, self._file_perms(entry), entry.offset, entry.path))
        result.sort(key=lambda m: m.start)
        return result

    def _file_perms(self, entry: FileEntry) -> str:
        cached = self._perms.get(entry.start)
        if cached is None:
            cached = "r--p"
            resolved = self._resolve(entry.path)
            if resolved.local_path and resolved.elf_type:
                try:
                    with open(resolved.local_path, "rb") as handle:
                        read = elf.file_reader(handle)
                        for seg in elf.segments(read, elf.header(read)):
                            if seg.type == elf.PT_LOAD and seg.offset & ~0xFFF == entry.offset:
                                cached = perms(seg.flags)
                                break
                except (OSError, elf.ElfFormatError):
                    pass
            self._perms[entry.start] = cached
        return cached

    # -- identity -------------------------------------------------------------------------
    def executable(self) -> str:
        return self._exe_path

    def command_line(self) -> List[str]:
        if self._argv is None:
            self._argv = self._core.command_line()
        return list(self._argv)

    def name(self) -> str:
        return self._core.program_name() or os.path.basename(self._exe_path) or "?"

    def is_alive(self) -> bool:
        return True

    # -- threads ---------------------------------------------------------------------------
    def threads(self) -> List[OSThread]:
        """Every thread the core recorded; 'S' if it was waiting inside a system call, else 'R'."""
        waiting = self.in_syscall(self.thread_ids())
        return [OSThread(tid, "S" if waiting[tid] else "R") for tid, _, _ in self._prstatus]

    def thread_ids(self) -> List[int]:
        return [tid for tid, _, _ in self._prstatus]

    def thread_name(self, tid: int) -> Optional[str]:
        return None  # cores keep no per-thread comm

    def registers(self, tid: int) -> Registers:
        regs = self._registers.get(tid)
        if regs is None:
            from .ptrace import RegistersUnavailableError
            raise RegistersUnavailableError("the core has no thread %d" % tid,
                                            "threads in this core: %s" % ", ".join(map(str, self._registers)))
        return regs

    def in_syscall(self, tids: Sequence[int]) -> Dict[int, bool]:
        return {tid: self._registers[tid].in_syscall and tid not in self._running
                for tid in tids if tid in self._registers}

    def warnings(self) -> List[str]:
        """What the front end should say about this core before trusting it (one line each).

        A stopped thread always has its caller's return address at its stack
        pointer; zeros there mean the producer could not read the stack (gdb's
        gcore zero-fills memory after a page it cannot read, such as glibc
        2.41's MADV_GUARD_INSTALL stack guards), so that thread's stacks are
        incomplete.
        """
        found = []
        lost = []
        for tid, regs, _ in self._prstatus:
            if regs.sp:
                top = self.read_many([(regs.sp, STACK_PROBE)])[0]
                if top is not None and not any(top):
                    lost.append(tid)
        if lost:
            found.append("%d of %d threads have only zeros at their stack pointers in this core (e.g. thread %d): "
                         "their stacks may be incomplete (gcore cannot read memory next to stack guard pages; "
                         "a kernel core has it)" % (len(lost), len(self._prstatus), lost[0]))
        return found

    def tid_map(self) -> Dict[int, int]:
        return {}  # NT_PRSTATUS ids are the ids of the dumped process's own namespace, as threads() gives

    @contextmanager
    def paused(self) -> Iterator[List[int]]:
        yield [tid for tid, _, _ in self._prstatus]

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._core.close()
        self._map = None

    def __enter__(self) -> "CoreProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "CoreProcess(%r, pid=%d)" % (self.core_path, self.pid)


__all__ = ["CoreProcess", "CoreFileError", "NotACoreError", "CoreTruncatedError", "BinaryNotFoundError",
           "BuildIdMismatchError", "FileEntry"]
