"""The few ELF facts a core file reader needs, parsed with ``struct`` (64-bit little-endian only).

Kept apart from ``core.py`` because the same header, program-header and note
walking serves three inputs: the core itself, the first page of every mapped
ELF file that the core holds (its build-id note), and the files on disk that
are checked against it.  Every function takes a ``read(offset, size)``
callable, so a core's mmap, a file and a dumped page all look alike, and
every bound is checked: a truncated or hostile file gives ``ElfFormatError``
(a ValueError), never an IndexError or a huge allocation.
"""
from __future__ import annotations

import struct
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

ELF_MAGIC = b"\x7fELF"
ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
EM_X86_64 = 62
PT_LOAD, PT_NOTE = 1, 4
PN_XNUM = 0xFFFF
NT_GNU_BUILD_ID = 3
#: Refuse more program headers than this (Linux caps a process at 65530 maps by default).
MAX_PHNUM = 1 << 20
#: Refuse note segments larger than this (a core's notes are KBs per thread).
MAX_NOTES = 256 << 20

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR0_INFO = struct.Struct("<I")  # sh_info of section header 0 (offset 44)
_NHDR = struct.Struct("<III")

TYPE_NAMES = {0: "no-type", 1: "relocatable object", ET_EXEC: "executable", ET_DYN: "shared object or PIE executable",
              ET_CORE: "core"}

Reader = Callable[[int, int], bytes]


class ElfFormatError(ValueError):
    """The bytes are not the ELF structure they claim to be (or are cut short)."""


class Header(NamedTuple):
    type: int
    machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int


class Segment(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


class Note(NamedTuple):
    name: bytes
    type: int
    desc: bytes


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
    (_, e_type, machine, _, _, phoff, shoff, _, _, phentsize, phnum, _, _, _) = _EHDR.unpack(raw)
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
    return Header(e_type, machine, phoff, phentsize, phnum, shoff)


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


def build_id(read: Reader, limit: Optional[int] = None) -> str:
    """The GNU build-id (hex) from an ELF image's PT_NOTE segments, '' if it has none.

    ``limit`` bounds the offsets that may be read (a dumped first page holds
    only the first 4 KiB of the file); a note outside it gives ''.
    """
    hdr = header(read)
    for seg in segments(read, hdr):
        if seg.type != PT_NOTE or seg.filesz > 1 << 16:
            continue
        if limit is not None and seg.offset + seg.filesz > limit:
            continue
        data = read(seg.offset, seg.filesz)
        if len(data) < seg.filesz:
            continue
        try:
            for note in notes(data):
                if note.type == NT_GNU_BUILD_ID and note.name == b"GNU":
                    return note.desc.hex()
        except ElfFormatError:
            continue
    return ""


def first_load_vaddr(read: Reader) -> Optional[int]:
    """The page-aligned p_vaddr of the first PT_LOAD (what the file's offset 0 maps to)."""
    loads = [s.vaddr - s.offset for s in segments(read, header(read)) if s.type == PT_LOAD]
    return (loads[0] & ~0xFFF) if loads else None


def file_reader(handle) -> Reader:
    """A ``Reader`` over an open binary file."""
    def read(offset: int, size: int) -> bytes:
        handle.seek(offset)
        return handle.read(size)
    return read


def bytes_reader(data: bytes) -> Reader:
    def read(offset: int, size: int) -> bytes:
        return bytes(data[offset:offset + size]) if offset >= 0 else b""
    return read


def file_facts(path: str) -> Tuple[int, str]:
    """(e_type, build-id) of an ELF file on disk; OSError or ``ElfFormatError`` if it is not one."""
    with open(path, "rb") as handle:
        read = file_reader(handle)
        return header(read).type, build_id(read)
