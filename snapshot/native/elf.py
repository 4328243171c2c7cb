"""A small ELF64 reader for what native unwinding needs, with ``struct`` only.

pyelftools builds a construct parser per structure, which costs
milliseconds per call; here one ``mmap`` of the file serves section
headers, notes, symbol tables and single FDEs by offset.  Only 64-bit
little-endian files are read (x86-64 Linux); anything else is an
``ElfFormatError``.
"""
from __future__ import annotations

import mmap
import os
import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from ..errors import SnapshotError

SHT_NOBITS = 8
SHT_NOTE = 7
PT_LOAD = 1
PT_NOTE = 4
PT_GNU_EH_FRAME = 0x6474E550
PF_X = 1

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_PHDR = struct.Struct("<IIQQQQQQ")


class ElfFormatError(SnapshotError):
    """A mapped file is not an ELF file we can read (truncated, foreign, or not ELF64 LE)."""

    exit_code = 7
    hint = "the file may have been replaced on disk since the process started"


class Section(NamedTuple):
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class Segment(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


class ElfFile:
    """One ELF file opened read-only and memory-mapped; cheap to keep open."""

    def __init__(self, path: str):
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

    def _parse_headers(self) -> None:
        (ident, self.type, machine, _, self.entry, phoff, shoff, _, _, phentsize, phnum,
         shentsize, shnum, shstrndx) = _EHDR.unpack_from(self.data, 0)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise ElfFormatError("%s is not a 64-bit little-endian ELF file" % self.path)
        self.machine = machine
        self.segments: List[Segment] = []
        for i in range(min(phnum, 512)):
            p = _PHDR.unpack_from(self.data, phoff + i * phentsize)
            self.segments.append(Segment(p[0], p[1], p[2], p[3], p[5], p[6]))
        raw = [_SHDR.unpack_from(self.data, shoff + i * shentsize) for i in range(min(shnum, 1 << 16))] \
            if shoff and shentsize >= _SHDR.size else []
        names = b""
        if raw and shstrndx < len(raw):
            s = raw[shstrndx]
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

    # -- contents --------------------------------------------------------------------
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
        for seg in self.segments:
            if seg.type == PT_NOTE:
                found = _build_id_in_notes(self.data[seg.offset:seg.offset + min(seg.filesz, 1 << 16)])
                if found:
                    return found
        for sec in self.section_list:
            if sec.type == SHT_NOTE:
                found = _build_id_in_notes(self.data[sec.offset:sec.offset + min(sec.size, 1 << 16)])
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


def _build_id_in_notes(notes: bytes) -> str:
    position = 0
    while position + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, position)
        name_end = position + 12 + ((namesz + 3) & ~3)
        if kind == 3 and notes[position + 12:position + 12 + namesz].rstrip(b"\0") == b"GNU":
            return notes[name_end:name_end + descsz].hex()
        position = name_end + ((descsz + 3) & ~3)
    return ""
