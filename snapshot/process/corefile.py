"""An ELF core file's own structure: its bytes mmapped, its load segments indexed, its notes parsed.

Kept apart from ``CoreProcess`` (``core.py``), which adds what the core does
not hold (the binaries on disk): here is only what the file itself says.
Threads and registers come from ``NT_PRSTATUS`` (one per thread, the
crashing one first in kernel cores), the pid and program name from
``NT_PRPSINFO``, the mapped files from ``NT_FILE``, and argv from the
process's own stack (found through the ``NT_AUXV`` copy, as
``/proc/PID/cmdline`` would give it).  The core is mmapped, never read whole,
and every count and length in it is bounded before use.
"""
from __future__ import annotations

import bisect
import mmap
import os
import struct

from layouts.records import NamedRow

from .. import elf
from ..errors import SnapshotError
from .base import USER_REGS_SIZE, Registers

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE, NT_SIGINFO = 1, 3, 6, 0x46494C45, 0x53494749
AT_NULL, AT_ENTRY, AT_EXECFN = 0, 9, 31
#: ``struct elf_prstatus`` (x86-64): pr_cursig at 12, pr_pid (the TID) at 32, pr_reg at 112.
PRSTATUS_CURSIG, PRSTATUS_PID, PRSTATUS_REG = 12, 32, 112
#: ``struct elf_prpsinfo`` (x86-64): pr_pid at 24, pr_fname[16] at 40, pr_psargs[80] at 56.
PRPSINFO_PID, PRPSINFO_FNAME, PRPSINFO_PSARGS = 24, 40, 56
#: Bytes of a mapping's start searched for the ELF header and build-id note.
HEADER_BYTES = 1 << 16
MAX_ARGS = 1 << 16
MAX_ARG_BYTES = 1 << 17
_U64 = struct.Struct("<Q")


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


class FileEntry(NamedRow):
    """One ``NT_FILE`` record: a file-backed mapping and its byte offset in the file."""

    start: int
    end: int
    offset: int
    path: str


class CoreFile:
    """One core file, opened and parsed (raises a ``CoreFileError`` if it is not a usable core)."""

    def __init__(self, path: str):
        self.path = path
        self.handle = None
        self.map: Optional[mmap.mmap] = None
        self._open(path)
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

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
        self.local_path = local
        try:
            self.handle = open(local, "rb")
            self.size = os.fstat(self.handle.fileno()).st_size
            if self.size == 0:
                raise NotACoreError("%s is empty, not a core file" % path)
            self.map = mmap.mmap(self.handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            self.close()
            raise CoreFileError("cannot map core file %s: %s" % (local, e.strerror or e)) from None
        except SnapshotError:
            self.close()
            raise

    def _parse(self) -> None:
        data = self.map
        assert data is not None
        size = self.size
        what = self.path
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
        self.loads = loads
        self.starts = [s.vaddr for s in loads]
        self.file_ends = [s.vaddr + s.filesz for s in loads]
        self.offsets = [s.offset for s in loads]
        self.prstatus: List[Tuple[int, Registers, int]] = []
        self.psinfo: Optional[bytes] = None
        self.auxv = b""
        self.siginfo = b""
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
        if not self.prstatus:
            raise NotACoreError("%s has no thread records (NT_PRSTATUS): not a process core" % what)
        entries.sort()
        self.entries = entries
        self.entry_starts = [e.start for e in entries]
        self.by_path: Dict[str, List[FileEntry]] = {}
        for entry in entries:
            self.by_path.setdefault(entry.path, []).append(entry)
        tids = [tid for tid, _, _ in self.prstatus]
        if self.psinfo is not None and len(self.psinfo) >= PRPSINFO_PSARGS + 80:
            self.pid = struct.unpack_from("<i", self.psinfo, PRPSINFO_PID)[0]
        else:
            self.pid = min(tids)
        self.registers = {tid: regs for tid, regs, _ in self.prstatus}
        #: The signal that ended the process (kernel cores: the crashing thread's), 0 if none.
        self.signal = self.prstatus[0][2]
        #: The thread the core names first (kernel cores: the one that received the signal).
        self.signalled_tid = self.prstatus[0][0]
        # A thread that raised its own fatal signal (abort(), raise()) was in tgkill when it
        # died, but it was running, not waiting: it is shown as such.
        self.running = set()
        if self.signal and len(self.siginfo) >= 24:
            signo, code = struct.unpack_from("<i4xi", self.siginfo, 0)
            sender = struct.unpack_from("<i", self.siginfo, 16)[0]  # si_pid of kill/tgkill
            if signo == self.signal and code <= 0 and sender == self.pid:
                self.running.add(self.signalled_tid)
        self.executable_path = self._find_executable_path()

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
            if tid not in {t for t, _, _ in self.prstatus}:
                self.prstatus.append((tid, regs, cursig))
        elif note.type == NT_PRPSINFO:
            self.psinfo = note.desc
        elif note.type == NT_AUXV:
            self.auxv = note.desc
        elif note.type == NT_SIGINFO and not self.siginfo:
            self.siginfo = note.desc
        elif note.type == NT_FILE:
            entries.extend(_file_entries(note.desc))

    # -- the core's own bytes ---------------------------------------------------------------
    def bytes_at(self, address: int, size: int) -> Optional[bytes]:
        """Bytes held by the core itself (never from a file), or None."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and address + size <= self.file_ends[i]:
            offset = self.offsets[i] + address - self.starts[i]
            return self.map[offset:offset + size]
        return None

    def header_bytes(self, entry: FileEntry) -> bytes:
        """The dumped start of a mapping (its ELF header page), as much as the core has of it."""
        i = bisect.bisect_right(self.starts, entry.start) - 1
        if i < 0 or self.starts[i] != entry.start:
            return b""
        n = min(HEADER_BYTES, self.file_ends[i] - entry.start, entry.end - entry.start)
        return self.map[self.offsets[i]:self.offsets[i] + n] if n > 0 else b""

    def entry_at(self, address: int) -> Optional[FileEntry]:
        """The ``NT_FILE`` mapping holding ``address``, if any."""
        i = bisect.bisect_right(self.entry_starts, address) - 1
        if i >= 0 and address < self.entries[i].end:
            return self.entries[i]
        return None

    def _find_executable_path(self) -> str:
        entry_point = auxv_value(self.auxv, AT_ENTRY)
        if entry_point:
            entry = self.entry_at(entry_point)
            if entry is not None:
                return entry.path
        return self.entries[0].path if self.entries else ""

    # -- identity ------------------------------------------------------------------------------
    def command_line(self) -> List[str]:
        """argv from the stack, else the 80 bytes of ``pr_psargs``."""
        argv = self.argv_from_stack()
        if argv is None:
            psargs = self.psinfo[PRPSINFO_PSARGS:PRPSINFO_PSARGS + 80] if self.psinfo else b""
            argv = psargs.split(b"\0", 1)[0].decode("utf-8", "replace").split()
        return argv

    def argv_from_stack(self) -> Optional[List[str]]:
        """argv as ``/proc/PID/cmdline`` gives it: walk back from the auxiliary vector on the stack.

        The initial stack is argc, argv[], NULL, envp[], NULL, auxv[]; the
        kernel's copy of auxv (``NT_AUXV``) finds the last part, the rest is
        walked backwards with every step bounded.
        """
        execfn = auxv_value(self.auxv, AT_EXECFN)
        if not execfn or len(self.auxv) < 16:
            return None
        i = bisect.bisect_right(self.starts, execfn) - 1
        if i < 0 or execfn >= self.file_ends[i]:
            return None
        seg_start, seg_off = self.starts[i], self.offsets[i]
        seg_end_off = seg_off + self.file_ends[i] - seg_start
        found = self.map.find(self.auxv, seg_off, seg_end_off)
        if found < 0 or (found - seg_off) % 8:
            return None
        position = found - 8  # the NULL that ends envp
        if position < seg_off or _U64.unpack_from(self.map, position)[0] != 0:
            return None
        position -= 8
        steps = 0
        while position >= seg_off and _U64.unpack_from(self.map, position)[0] != 0:  # envp, backwards
            position -= 8
            steps += 1
            if steps > MAX_ARGS:
                return None
        pointers: List[int] = []
        position -= 8
        while position >= seg_off and len(pointers) <= MAX_ARGS:  # argv backwards, until argc
            value = _U64.unpack_from(self.map, position)[0]
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
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0 or address >= self.file_ends[i]:
            return None
        offset = self.offsets[i] + address - self.starts[i]
        limit = min(offset + MAX_ARG_BYTES, self.offsets[i] + self.file_ends[i] - self.starts[i])
        end = self.map.find(b"\0", offset, limit)
        return self.map[offset:end] if end >= 0 else None

    def program_name(self) -> str:
        """``pr_fname`` (the kernel's comm), '' when the core has none."""
        if self.psinfo and len(self.psinfo) >= PRPSINFO_FNAME + 16:
            raw = self.psinfo[PRPSINFO_FNAME:PRPSINFO_FNAME + 16].split(b"\0", 1)[0]
            return raw.decode("utf-8", "replace")
        return ""

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None


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


def auxv_value(auxv: bytes, key: int) -> int:
    """The value of ``key`` in an ``NT_AUXV`` copy (0 when absent)."""
    for i in range(0, len(auxv) - 15, 16):
        k, v = struct.unpack_from("<QQ", auxv, i)
        if k == key:
            return v
        if k == AT_NULL:
            break
    return 0


def perms(flags: int) -> str:
    """A segment's ``p_flags`` as the permission column of a maps line (``r-xp``)."""
    return ("r" if flags & 4 else "-") + ("w" if flags & 2 else "-") + ("x" if flags & 1 else "-") + "p"


def _describe_start(head: bytes) -> str:
    if not head:
        return "it is empty"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it starts with text %r" % head.decode("ascii")[:16]
    return "it starts with bytes %s" % head[:8].hex()


