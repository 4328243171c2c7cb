"""``CoreProcess``: an ELF core file (kernel or gcore) plus the binaries on disk, as a ``Process``.

A core holds what the process had written: heap, stacks, ``.data``/``.bss``
(``_PyRuntime`` among them), and the first page of every mapped ELF file
(its header and build-id note).  It leaves out what can be read again from
the files: code and read-only data.  So a read is served from the core where
a ``PT_LOAD`` has file bytes (``p_filesz``), else from the file that
``NT_FILE`` says was mapped there, at ``page_offset * page_size`` (the
kernel counts in 4096-byte pages, gcore in bytes) plus the distance into the
mapping.  That file is looked for by its recorded path, under
``search_path`` (by path suffix and by basename) and at ``executable`` for
the main program, and accepted only if its build-id equals the one in the
core's dumped first page: a different binary would give wrong stacks, so it
is a typed error naming both build-ids instead.  A missing file is an error
only when something needs its bytes.

Threads and registers come from ``NT_PRSTATUS`` (one per thread, the
crashing one first in kernel cores), the pid and program name from
``NT_PRPSINFO``, argv from the process's own stack (found through the
``NT_AUXV`` copy, as ``/proc/PID/cmdline`` would give it), falling back to
``pr_psargs``.  The core is mmapped, never read whole.
"""
from __future__ import annotations

import bisect
import mmap
import os
import struct
from contextlib import contextmanager
from typing import BinaryIO, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import BinaryReadError, MemoryReadError, SnapshotError
from .. import elf
from .base import FILES, REGISTERS, USER_REGS_SIZE, MappedFile, MemoryMap, OSThread, Registers

#: Largest single read accepted (remote sizes are untrusted), as for live processes.
MAX_READ = 64 << 20
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE, NT_SIGINFO = 1, 3, 6, 0x46494C45, 0x53494749
AT_NULL, AT_ENTRY, AT_EXECFN = 0, 9, 31
#: ``struct elf_prstatus`` (x86-64): pr_cursig at 12, pr_pid (the TID) at 32, pr_reg at 112.
PRSTATUS_CURSIG, PRSTATUS_PID, PRSTATUS_REG = 12, 32, 112
#: ``struct elf_prpsinfo`` (x86-64): pr_pid at 24, pr_fname[16] at 40, pr_psargs[80] at 56.
PRPSINFO_PID, PRPSINFO_FNAME, PRPSINFO_PSARGS = 24, 40, 56
#: Bytes of a mapping's start searched for the ELF header and build-id note.
HEADER_BYTES = 1 << 16
MAX_ARGS = 1 << 16
#: Bytes at a thread's stack pointer checked for the zeros of unreadable stack memory.
STACK_PROBE = 64
MAX_ARG_BYTES = 1 << 17
_U64 = struct.Struct("<Q")
_DELETED = " (deleted)"

_SEARCH_HINT = "give the directory holding a copy with --lib-search-path DIR (or the program with --executable PATH)"


class CoreFileError(SnapshotError):
    """The core file itself cannot be used."""

    exit_code = 9
    hint = "give a core dumped by the kernel (ulimit -c unlimited) or by gcore (gzip/zstd/xz cores are read too)"


class NotACoreError(CoreFileError):
    """The file is not an ELF core (another file, or an executable given in its place)."""


class CoreTruncatedError(CoreFileError):
    """The core is shorter than its own headers say."""

    hint = ("it was cut short while written or copied (disk full, a `ulimit -c` size limit, an interrupted copy); "
            "take or copy it again")


class BinaryNotFoundError(MemoryReadError, BinaryReadError):
    """A file the core needs (code, read-only data, symbols) is not on this machine.

    A ``MemoryReadError`` where a read needs the file's bytes, a
    ``BinaryReadError`` where the file itself is asked for (``open_file``).
    """

    exit_code = 9
    hint = _SEARCH_HINT

    def __init__(self, message: str, path: str, address: int = 0, size: int = 0):
        SnapshotError.__init__(self, message)
        self.path = path
        self.address = address
        self.size = size


class BuildIdMismatchError(BinaryNotFoundError):
    """The file found for a mapping is a different build than the one the process had mapped."""

    hint = ("the binary changed since the core was written (upgraded or rebuilt): give the exact build with "
            "--lib-search-path DIR (or --executable PATH)")


class FileEntry(NamedTuple):
    """One ``NT_FILE`` record: a file-backed mapping and its byte offset in the file."""

    start: int
    end: int
    offset: int
    path: str


class _Resolved(NamedTuple):
    local_path: str
    error: Optional[BinaryNotFoundError]
    build_id: str          # what the core says (or, when it has no header page, the file's)
    elf_type: int          # 0 when not an ELF file
    first_vaddr: int


class CoreProcess:
    """A process as an ELF core file recorded it (see the module docstring)."""

    capabilities: FrozenSet[str] = frozenset({REGISTERS, FILES})

    def __init__(self, core_path: str, search_path: Sequence[str] = (), executable: Optional[str] = None):
        self.core_path = core_path
        self.search_path = tuple(p for p in search_path if p)
        self.executable_override = executable
        self._handle = None
        self._map: Optional[mmap.mmap] = None
        self._files: Dict[str, BinaryIO] = {}
        self._resolved: Dict[str, _Resolved] = {}
        self._perms: Dict[int, str] = {}
        self._open(core_path)
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    # -- opening ----------------------------------------------------------------
    def _open(self, path: str) -> None:
        from .decompress import compression, decompressed
        try:
            with open(path, "rb") as probe:
                head = probe.read(8)
        except FileNotFoundError:
            raise CoreFileError("no such core file: %s" % path, "check the path") from None
        except IsADirectoryError:
            raise NotACoreError("%s is a directory, not a core file" % path) from None
        except OSError as e:
            raise CoreFileError("cannot read core file %s: %s" % (path, e.strerror), "check its permissions") from None
        kind = compression(head)
        self.compression = kind
        local = decompressed(path, kind) if kind else path
        self.local_core_path = local
        try:
            self._handle = open(local, "rb")
            self.core_size = os.fstat(self._handle.fileno()).st_size
            if self.core_size == 0:
                raise NotACoreError("%s is empty, not a core file" % path)
            self._map = mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            self.close()
            raise CoreFileError("cannot map core file %s: %s" % (local, e.strerror or e)) from None
        except SnapshotError:
            self.close()
            raise

    def _parse(self) -> None:
        data = self._map
        assert data is not None
        size = self.core_size
        what = self.core_path
        read = elf.bytes_reader(data)
        try:
            hdr = elf.header(read)
        except elf.ElfFormatError as e:
            if data[:4] == elf.ELF_MAGIC:
                raise CoreTruncatedError("%s is cut short: %s" % (what, e)) from None
            raise NotACoreError("%s is not a core file (%s)" % (what, _describe_start(data[:16]))) from None
        if hdr.type != elf.ET_CORE:
            kind = elf.TYPE_NAMES.get(hdr.type, "ELF file of type %d" % hdr.type)
            raise NotACoreError("%s is an ELF %s, not a core file" % (what, kind),
                                "pass the core file with --core, and this program (if needed) with --executable")
        if hdr.machine != elf.EM_X86_64:
            raise NotACoreError("%s is a core of another architecture (e_machine %d)" % (what, hdr.machine),
                                "pyspy-repl reads x86-64 cores")
        try:
            segs = elf.segments(read, hdr)
        except elf.ElfFormatError as e:
            raise CoreTruncatedError("%s is cut short: %s" % (what, e)) from None
        loads = sorted((s for s in segs if s.type == elf.PT_LOAD), key=lambda s: s.vaddr)
        need = max([s.offset + s.filesz for s in segs if s.type in (elf.PT_LOAD, elf.PT_NOTE)] or [0])
        if need > size:
            raise CoreTruncatedError("%s is cut short: %d bytes, its headers describe %d" % (what, size, need))
        self._loads = loads
        self._starts = [s.vaddr for s in loads]
        self._file_ends = [s.vaddr + s.filesz for s in loads]
        self._offsets = [s.offset for s in loads]
        self._prstatus: List[Tuple[int, Registers, int]] = []
        self._psinfo: Optional[bytes] = None
        self._auxv = b""
        self._siginfo = b""
        entries: List[FileEntry] = []
        for seg in segs:
            if seg.type != elf.PT_NOTE:
                continue
            if seg.filesz > elf.MAX_NOTES:
                raise NotACoreError("%s has an implausible note segment (%d bytes)" % (what, seg.filesz))
            try:
                for note in elf.notes(data[seg.offset:seg.offset + seg.filesz]):
                    self._note(note, entries)
            except (elf.ElfFormatError, struct.error) as e:
                raise CoreTruncatedError("%s has damaged notes: %s" % (what, e)) from None
        if not self._prstatus:
            raise NotACoreError("%s has no thread records (NT_PRSTATUS): not a process core" % what)
        entries.sort()
        self._entries = entries
        self._entry_starts = [e.start for e in entries]
        self._by_path: Dict[str, List[FileEntry]] = {}
        for entry in entries:
            self._by_path.setdefault(entry.path, []).append(entry)
        tids = [tid for tid, _, _ in self._prstatus]
        if self._psinfo is not None and len(self._psinfo) >= PRPSINFO_PSARGS + 80:
            self.pid = struct.unpack_from("<i", self._psinfo, PRPSINFO_PID)[0]
        else:
            self.pid = min(tids)
        self._registers = {tid: regs for tid, regs, _ in self._prstatus}
        #: The signal that ended the process (kernel cores: the crashing thread's), 0 if none.
        self.signal = self._prstatus[0][2]
        #: The thread the core names first (kernel cores: the one that received the signal).
        self.signalled_tid = self._prstatus[0][0]
        # A thread that raised its own fatal signal (abort(), raise()) was in tgkill when it
        # died, but it was running, not waiting: it is shown as such.
        self._running = set()
        if self.signal and len(self._siginfo) >= 24:
            signo, code = struct.unpack_from("<i4xi", self._siginfo, 0)
            sender = struct.unpack_from("<i", self._siginfo, 16)[0]  # si_pid of kill/tgkill
            if signo == self.signal and code <= 0 and sender == self.pid:
                self._running.add(self.signalled_tid)
        self._exe_path = self._find_executable_path()
        self._argv: Optional[List[str]] = None

    def _note(self, note: elf.Note, entries: List[FileEntry]) -> None:
        if note.name != b"CORE":
            return
        if note.type == NT_PRSTATUS:
            desc = note.desc
            if len(desc) < PRSTATUS_REG + USER_REGS_SIZE:
                raise elf.ElfFormatError("NT_PRSTATUS of %d bytes" % len(desc))
            tid = struct.unpack_from("<i", desc, PRSTATUS_PID)[0]
            cursig = struct.unpack_from("<h", desc, PRSTATUS_CURSIG)[0]
            regs = Registers.from_user_regs(desc[PRSTATUS_REG:PRSTATUS_REG + USER_REGS_SIZE])
            if tid not in {t for t, _, _ in self._prstatus}:
                self._prstatus.append((tid, regs, cursig))
        elif note.type == NT_PRPSINFO:
            self._psinfo = note.desc
        elif note.type == NT_AUXV:
            self._auxv = note.desc
        elif note.type == NT_SIGINFO and not self._siginfo:
            self._siginfo = note.desc
        elif note.type == NT_FILE:
            entries.extend(_file_entries(note.desc))

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
                entry = self._entry_at(at)
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

    def _entry_at(self, address: int) -> Optional[FileEntry]:
        i = bisect.bisect_right(self._entry_starts, address) - 1
        if i >= 0 and address < self._entries[i].end:
            return self._entries[i]
        return None

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
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address + size <= self._file_ends[i]:
            offset = self._offsets[i] + address - self._starts[i]
            return self._map[offset:offset + size]
        return None

    # -- files -------------------------------------------------------------------------
    def _header_bytes(self, entry: FileEntry) -> bytes:
        """The dumped start of a mapping (its ELF header page), as much as the core has of it."""
        i = bisect.bisect_right(self._starts, entry.start) - 1
        if i < 0 or self._starts[i] != entry.start:
            return b""
        n = min(HEADER_BYTES, self._file_ends[i] - entry.start, entry.end - entry.start)
        return self._map[self._offsets[i]:self._offsets[i] + n] if n > 0 else b""

    def _first_entry(self, path: str) -> Optional[FileEntry]:
        for entry in self._by_path.get(path, ()):
            if entry.offset == 0:
                return entry
        return None

    def _candidates(self, path: str) -> List[str]:
        clean = path[:-len(_DELETED)] if path.endswith(_DELETED) else path
        found: List[str] = []
        if self.executable_override and path == self._exe_path:
            found.append(self.executable_override)
        parts = [p for p in clean.split("/") if p]
        for directory in self.search_path:
            for i in range(len(parts)):
                found.append(os.path.join(directory, *parts[i:]))
        found.append(clean)
        unique: List[str] = []
        for c in found:
            if c not in unique:
                unique.append(c)
        return unique

    def _resolve(self, path: str) -> _Resolved:
        """Which local file stands for ``path``: the first candidate whose build-id matches."""
        cached = self._resolved.get(path)
        if cached is not None:
            return cached
        entry = self._first_entry(path)
        page = self._header_bytes(entry) if entry is not None else b""
        expected, elf_type, first_vaddr = "", 0, 0
        if elf.is_elf(page):
            expected, elf_type, first_vaddr = _identity(elf.bytes_reader(page), len(page))
        mismatched: List[Tuple[str, str]] = []
        result = None
        for candidate in self._candidates(path):
            if not os.path.isfile(candidate):
                continue
            if not elf.is_elf(page):
                # The core does not say what was mapped here (no dumped header page, or not an
                # ELF file): nothing to check the file against.
                found = elf.identify(candidate)
                result = _Resolved(candidate, None, found.build_id, found.type, found.first_load_vaddr) \
                    if found is not None else _Resolved(candidate, None, "", 0, 0)
                break
            try:
                _, actual = elf.file_facts(candidate)
            except (OSError, elf.ElfFormatError):
                actual = "none (not an ELF file)"
            if not expected or actual == expected:
                result = _Resolved(candidate, None, expected or actual, elf_type, first_vaddr)
                break
            mismatched.append((candidate, actual))
        if result is None:
            if mismatched:
                local, actual = mismatched[0]
                error: BinaryNotFoundError = BuildIdMismatchError(
                    "%s has build-id %s, but the process had %s with build-id %s" % (local, actual or "none",
                                                                                    path, expected), path)
            else:
                where = ", ".join(self.search_path) if self.search_path else "no --lib-search-path given"
                error = BinaryNotFoundError("%s (mapped in the core) is not on this machine (searched: %s)"
                                            % (path, where), path)
            result = _Resolved("", error, expected, elf_type, first_vaddr)
        self._resolved[path] = result
        return result

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

    def mapped_files(self) -> List[MappedFile]:
        """Every ELF file the core maps (an unresolved one has ``local_path`` '')."""
        result = []
        seen = set()
        for entry in self._entries:
            if entry.path in seen or entry.offset != 0:
                continue
            seen.add(entry.path)
            resolved = self._resolve(entry.path)
            if not resolved.elf_type:
                continue
            ranges = self._by_path[entry.path]
            bias = 0 if resolved.elf_type == elf.ET_EXEC else entry.start - resolved.first_vaddr
            result.append(MappedFile(entry.path, min(e.start for e in ranges), max(e.end for e in ranges), bias,
                                     resolved.build_id, resolved.local_path))
        result.sort(key=lambda f: f.start)
        return result

    def maps(self) -> List[MemoryMap]:
        by_start = {e.start: e for e in self._entries}
        result = []
        load_starts = set()
        for seg in self._loads:
            load_starts.add(seg.vaddr)
            entry = by_start.get(seg.vaddr)
            result.append(MemoryMap(seg.vaddr, seg.vaddr + seg.memsz, _perms(seg.flags),
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
                                cached = _perms(seg.flags)
                                break
                except (OSError, elf.ElfFormatError):
                    pass
            self._perms[entry.start] = cached
        return cached

    # -- identity -------------------------------------------------------------------------
    def _find_executable_path(self) -> str:
        entry_point = _auxv_value(self._auxv, AT_ENTRY)
        if entry_point:
            entry = self._entry_at(entry_point)
            if entry is not None:
                return entry.path
        return self._entries[0].path if self._entries else ""

    def executable(self) -> str:
        return self._exe_path

    def command_line(self) -> List[str]:
        if self._argv is None:
            self._argv = self._argv_from_stack()
            if self._argv is None:
                psargs = self._psinfo[PRPSINFO_PSARGS:PRPSINFO_PSARGS + 80] if self._psinfo else b""
                self._argv = psargs.split(b"\0", 1)[0].decode("utf-8", "replace").split()
        return list(self._argv)

    def _argv_from_stack(self) -> Optional[List[str]]:
        """argv as ``/proc/PID/cmdline`` gives it: walk back from the auxiliary vector on the stack.

        The initial stack is argc, argv[], NULL, envp[], NULL, auxv[]; the
        kernel's copy of auxv (``NT_AUXV``) finds the last part, the rest is
        walked backwards with every step bounded.
        """
        execfn = _auxv_value(self._auxv, AT_EXECFN)
        if not execfn or len(self._auxv) < 16:
            return None
        i = bisect.bisect_right(self._starts, execfn) - 1
        if i < 0 or execfn >= self._file_ends[i]:
            return None
        seg_start, seg_off = self._starts[i], self._offsets[i]
        seg_end_off = seg_off + self._file_ends[i] - seg_start
        found = self._map.find(self._auxv, seg_off, seg_end_off)
        if found < 0 or (found - seg_off) % 8:
            return None
        position = found - 8  # the NULL that ends envp
        if position < seg_off or _U64.unpack_from(self._map, position)[0] != 0:
            return None
        position -= 8
        steps = 0
        while position >= seg_off and _U64.unpack_from(self._map, position)[0] != 0:  # envp, backwards
            position -= 8
            steps += 1
            if steps > MAX_ARGS:
                return None
        pointers: List[int] = []
        position -= 8
        while position >= seg_off and len(pointers) <= MAX_ARGS:  # argv backwards, until argc
            value = _U64.unpack_from(self._map, position)[0]
            if value == len(pointers):
                break
            pointers.append(value)
            position -= 8
        else:
            return None
        argv = []
        for pointer in reversed(pointers):
            raw = self._c_string(pointer)
            if raw is None:
                return None
            argv.append(raw.decode("utf-8", "replace"))
        return argv

    def _c_string(self, address: int) -> Optional[bytes]:
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or address >= self._file_ends[i]:
            return None
        offset = self._offsets[i] + address - self._starts[i]
        limit = min(offset + MAX_ARG_BYTES, self._offsets[i] + self._file_ends[i] - self._starts[i])
        end = self._map.find(b"\0", offset, limit)
        return self._map[offset:end] if end >= 0 else None

    def name(self) -> str:
        if self._psinfo and len(self._psinfo) >= PRPSINFO_FNAME + 16:
            raw = self._psinfo[PRPSINFO_FNAME:PRPSINFO_FNAME + 16].split(b"\0", 1)[0]
            if raw:
                return raw.decode("utf-8", "replace")
        return os.path.basename(self._exe_path) or "?"

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
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "CoreProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "CoreProcess(%r, pid=%d)" % (self.core_path, self.pid)


# -- helpers -------------------------------------------------------------------------------
def _file_entries(desc: bytes) -> List[FileEntry]:
    """Parse ``NT_FILE``: count, page_size, count x (start, end, page_offset), then count names."""
    if len(desc) < 16:
        raise elf.ElfFormatError("NT_FILE of %d bytes" % len(desc))
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    table_end = 16 + 24 * count
    if count > elf.MAX_PHNUM or table_end > len(desc):
        raise elf.ElfFormatError("NT_FILE claims %d mappings in %d bytes" % (count, len(desc)))
    names = bytes(desc[table_end:]).split(b"\0")
    if len(names) < count:
        raise elf.ElfFormatError("NT_FILE has %d names for %d mappings" % (len(names), count))
    result = []
    for i in range(count):
        start, end, page_offset = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
        result.append(FileEntry(start, end, page_offset * page_size, names[i].decode("utf-8", "surrogateescape")))
    return result


def _auxv_value(auxv: bytes, key: int) -> int:
    for i in range(0, len(auxv) - 15, 16):
        k, v = struct.unpack_from("<QQ", auxv, i)
        if k == key:
            return v
        if k == AT_NULL:
            break
    return 0


def _identity(read, limit: Optional[int]) -> Tuple[str, int, int]:
    """(build-id, e_type, first PT_LOAD page vaddr) of an ELF image; e_type 0 if it is none."""
    try:
        found = elf.identity(read, limit)
    except elf.ElfFormatError:
        return "", 0, 0
    return found.build_id, found.type, found.first_load_vaddr


def _perms(flags: int) -> str:
    return ("r" if flags & 4 else "-") + ("w" if flags & 2 else "-") + ("x" if flags & 1 else "-") + "p"


def _describe_start(head: bytes) -> str:
    if not head:
        return "it is empty"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it starts with text %r" % head.decode("ascii")[:16]
    return "it starts with bytes %s" % head[:8].hex()


__all__ = ["CoreProcess", "CoreFileError", "NotACoreError", "CoreTruncatedError", "BinaryNotFoundError",
           "BuildIdMismatchError", "FileEntry"]
