"""ELF64 structure read with ``struct`` only: header, program headers, notes, sections.

Why one small reader and not pyelftools: these facts are read on every attach
(a mapped file's build-id keys the binary cache, its first load address gives
its load bias), for every file a core maps, and for every module the native
unwinder opens; pyelftools builds a construct parser per structure, which
costs milliseconds each time.  pyelftools stays in ``binary.analyse`` (the
cached slow path for symbols).

Every function takes a ``read(offset, size)`` callable, so a core's mmap, a
file on disk and a page dumped in a core look alike; every bound is checked,
so a truncated or hostile file gives ``ElfFormatError``, never an IndexError
or a huge allocation.  Only 64-bit little-endian ELF (x86-64 Linux) is read.
"""
from __future__ import annotations

import os
import struct

from layouts.records import NamedRow

from .errors import SnapshotError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Dict, Iterator, List, Optional, Tuple

    Reader = Callable[[int, int], bytes]


ELF_MAGIC = b"\x7fELF"
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
EM_X86_64 = 62
PT_LOAD, PT_NOTE = 1, 4
PT_GNU_EH_FRAME = 0x6474E550
PF_X = 1
SHT_NOTE, SHT_NOBITS = 7, 8
PN_XNUM = 0xFFFF
NT_GNU_BUILD_ID = 3
#: Refuse more program headers than this (Linux caps a process at 65530 maps by default).
MAX_PHNUM = 1 << 20
#: Refuse note segments larger than this (a core's notes are KBs per thread).
MAX_NOTES = 256 << 20
#: A build-id note segment larger than this is not looked into.
MAX_ID_NOTES = 1 << 16

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SHDR0_INFO = struct.Struct("<I")  # sh_info of section header 0 (offset 44)
_NHDR = struct.Struct("<III")

TYPE_NAMES = {0: "no-type", ET_REL: "relocatable object", ET_EXEC: "executable",
              ET_DYN: "shared object or PIE executable", ET_CORE: "core"}


class ElfFormatError(SnapshotError, ValueError):
    """The bytes are not the ELF structure they claim to be (cut short, foreign, or not ELF64 LE)."""

    exit_code = 7
    hint = "the file may have been replaced on disk since the process started"


class Header(NamedRow):
    type: int
    machine: int
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int


class Segment(NamedRow):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


class Section(NamedRow):
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class Note(NamedRow):
    name: bytes
    type: int
    desc: bytes


class Identity(NamedRow):
    """What a mapped file needs to be placed and recognised."""

    type: int              # ET_EXEC, ET_DYN, ...
    first_load_vaddr: int  # page-aligned vaddr that file offset 0 maps to (first PT_LOAD)
    build_id: str          # hex, '' when the file has none


# -- readers -------------------------------------------------------------------------------
def file_reader(handle) -> Reader:
    """A ``Reader`` over an open binary file."""
    def read(offset: int, size: int) -> bytes:
        handle.seek(offset)
        return handle.read(size)
    return read


def bytes_reader(data) -> Reader:
    """A ``Reader`` over bytes, a memoryview or an mmap."""
    def read(offset: int, size: int) -> bytes:
        return bytes(data[offset:offset + size]) if offset >= 0 else b""
    return read


# -- structure -----------------------------------------------------------------------------
def is_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def header(read: Reader) -> Header:
    """The ELF header; raises ``ElfFormatError`` for anything but a 64-bit little-endian ELF."""
    raw = read(0, _EHDR.size)
    if len(raw) < 4 or raw[:4] != ELF_MAGIC:
        raise ElfFormatError("not an ELF file")
    if len(raw) < _EHDR.size:
        raise ElfFormatError("ELF header cut short (%d bytes)" % len(raw))
    if raw[4] != 2 or raw[5] != 1:
        raise ElfFormatError("not a 64-bit little-endian ELF file (class %d, data %d)" % (raw[4], raw[5]))
    (_, e_type, machine, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = _EHDR.unpack(raw)
    if phnum == PN_XNUM and shoff:
        # More than 65534 program headers: the real count is section header 0's sh_info.
        extra = read(shoff + 44, 4)
        if len(extra) < 4:
            raise ElfFormatError("section header 0 (program header count) cut short")
        phnum = _SHDR0_INFO.unpack(extra)[0]
    if phnum and phentsize < _PHDR.size:
        raise ElfFormatError("program header entries of %d bytes (expected %d)" % (phentsize, _PHDR.size))
    if phnum > MAX_PHNUM:
        raise ElfFormatError("implausible program header count %d" % phnum)
    return Header(e_type, machine, entry, phoff, phentsize, phnum, shoff, shentsize, shnum, shstrndx)


def segments(read: Reader, hdr: Header) -> List[Segment]:
    """Every program header; raises ``ElfFormatError`` if the table is cut short."""
    size = hdr.phentsize * hdr.phnum
    table = read(hdr.phoff, size) if size else b""
    if len(table) < size:
        raise ElfFormatError("program header table cut short (%d of %d bytes)" % (len(table), size))
    result = []
    for i in range(hdr.phnum):
        p_type, flags, offset, vaddr, _, filesz, memsz, _ = _PHDR.unpack_from(table, i * hdr.phentsize)
        result.append(Segment(p_type, flags, offset, vaddr, filesz, memsz))
    return result


def notes(data: bytes) -> Iterator[Note]:
    """The notes of one PT_NOTE segment's bytes (4-byte aligned, as Linux writes them)."""
    position = 0
    end = len(data)
    while position + _NHDR.size <= end:
        namesz, descsz, kind = _NHDR.unpack_from(data, position)
        name_start = position + _NHDR.size
        desc_start = name_start + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if desc_end > end:
            raise ElfFormatError("note at offset %d runs past its segment" % position)
        yield Note(bytes(data[name_start:name_start + namesz]).rstrip(b"\0"), kind,
                   bytes(data[desc_start:desc_end]))
        position = desc_start + ((descsz + 3) & ~3)


def build_id_in_notes(data: bytes) -> str:
    """The GNU build-id (hex) among one note segment's or section's notes, '' if none."""
    try:
        for note in notes(data):
            if note.type == NT_GNU_BUILD_ID and note.name == b"GNU":
                return note.desc.hex()
    except ElfFormatError:
        pass
    return ""


def _build_id(read: Reader, segs: List[Segment], limit: Optional[int]) -> str:
    for seg in segs:
        if seg.type != PT_NOTE or seg.filesz > MAX_ID_NOTES:
            continue
        if limit is not None and seg.offset + seg.filesz > limit:
            continue
        data = read(seg.offset, seg.filesz)
        if len(data) == seg.filesz:
            found = build_id_in_notes(data)
            if found:
                return found
    return ""


def _first_load(segs: List[Segment]) -> Optional[int]:
    for s in segs:
        if s.type == PT_LOAD:
            return (s.vaddr - s.offset) & ~0xFFF
    return None


def build_id(read: Reader, limit: Optional[int] = None) -> str:
    """The GNU build-id (hex) from an ELF image's PT_NOTE segments, '' if it has none.

    ``limit`` bounds the offsets that may be read (a dumped first page holds
    only the first 4 KiB of the file); a note outside it gives ''.
    """
    return _build_id(read, segments(read, header(read)), limit)


def first_load_vaddr(read: Reader) -> Optional[int]:
    """The page-aligned vaddr of the first PT_LOAD (what the file's offset 0 maps to)."""
    return _first_load(segments(read, header(read)))


def identity(read: Reader, limit: Optional[int] = None) -> Identity:
    """Type, first load address and build-id, reading the headers once."""
    hdr = header(read)
    segs = segments(read, hdr)
    first = _first_load(segs)
    return Identity(hdr.type, first or 0, _build_id(read, segs, limit))


def identify(path: str) -> Optional[Identity]:
    """The identity of the ELF file at ``path``; None when unreadable or not 64-bit LE ELF."""
    try:
        with open(path, "rb") as handle:
            return identity(file_reader(handle))
    except (OSError, ElfFormatError, struct.error):
        return None


def file_build_id(path: str) -> str:
    """The GNU build-id of ``path`` ('' when it has none or cannot be read)."""
    found = identify(path)
    return found.build_id if found else ""


def file_facts(path: str) -> Tuple[int, str]:
    """(e_type, build-id) of an ELF file on disk; OSError or ``ElfFormatError`` if it is not one."""
    with open(path, "rb") as handle:
        found = identity(file_reader(handle))
    return found.type, found.build_id


# -- a whole file, memory-mapped (the native unwinder's modules) ------------------------------
class ElfFile:
    """One ELF file opened read-only and memory-mapped; cheap to keep open."""

    def __init__(self, path: str):
        import mmap     # here: a dump that only identifies files never maps one
        self.path = path
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < _EHDR.size:
                    raise ElfFormatError("%s is too small to be an ELF file" % path)
                self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise ElfFormatError("cannot open %s: %s" % (path, e.strerror or e)) from None
        try:
            self._parse_headers()
        except struct.error as e:
            raise ElfFormatError("%s: truncated ELF headers (%s)" % (path, e)) from None
        except ElfFormatError as e:
            raise ElfFormatError("%s: %s" % (path, e)) from None

    def _parse_headers(self) -> None:
        read = bytes_reader(self.data)
        hdr = header(read)
        self.type, self.machine, self.entry = hdr.type, hdr.machine, hdr.entry
        self.segments: List[Segment] = segments(read, hdr)
        count = min(hdr.shnum, 1 << 16)
        raw = [_SHDR.unpack_from(self.data, hdr.shoff + i * hdr.shentsize) for i in range(count)] \
            if hdr.shoff and hdr.shentsize >= _SHDR.size else []
        names = b""
        if raw and hdr.shstrndx < len(raw):
            s = raw[hdr.shstrndx]
            names = self.data[s[4]:s[4] + s[5]]
        self.sections: Dict[str, Section] = {}
        self.section_list: List[Section] = []
        for s in raw:
            end = names.find(b"\0", s[0])
            name = names[s[0]:end if end >= 0 else None].decode("latin-1")
            sec = Section(name, s[1], s[2], s[3], s[4], s[5], s[6], s[9])
            self.section_list.append(sec)
            self.sections.setdefault(name, sec)

    def close(self) -> None:
        try:
            self.data.close()
        except (BufferError, ValueError):
            pass

    def section_bytes(self, name: str) -> Optional[bytes]:
        s = self.sections.get(name)
        if s is None or s.type == SHT_NOBITS:
            return None
        return self.data[s.offset:s.offset + s.size]

    def has_bits(self, name: str) -> bool:
        s = self.sections.get(name)
        return s is not None and s.type != SHT_NOBITS and s.size > 0

    def vaddr_to_offset(self, vaddr: int) -> Optional[int]:
        """File offset of a virtual address inside a loaded segment's file bytes."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return seg.offset + vaddr - seg.vaddr
        return None

    def read_vaddr(self, vaddr: int, size: int) -> Optional[bytes]:
        offset = self.vaddr_to_offset(vaddr)
        if offset is None:
            return None
        return self.data[offset:offset + size]

    def executable_ranges(self) -> List[Tuple[int, int]]:
        return [(s.vaddr, s.vaddr + s.memsz) for s in self.segments if s.type == PT_LOAD and s.flags & PF_X]

    def build_id(self) -> str:
        """From the note segments, else from note sections (a separate debug file has only those)."""
        found = _build_id(bytes_reader(self.data), self.segments, None)
        if found:
            return found
        for sec in self.section_list:
            if sec.type == SHT_NOTE:
                found = build_id_in_notes(self.data[sec.offset:sec.offset + min(sec.size, MAX_ID_NOTES)])
                if found:
                    return found
        return ""

    def debuglink(self) -> Optional[Tuple[str, int]]:
        """(file name, CRC32) of ``.gnu_debuglink``, if any."""
        raw = self.section_bytes(".gnu_debuglink")
        if not raw:
            return None
        end = raw.find(b"\0")
        if end <= 0:
            return None
        crc_at = (end + 4) & ~3
        crc = struct.unpack_from("<I", raw, crc_at)[0] if crc_at + 4 <= len(raw) else 0
        return raw[:end].decode("latin-1"), crc
