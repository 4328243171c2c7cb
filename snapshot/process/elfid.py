"""An ELF file's identity without pyelftools: type, first load address, GNU build-id.

Why: this runs on every attach (the build-id keys the binary cache, and
``mapped_files`` needs each file's load address to compute its load bias), so
it reads only the ELF header, the program headers and the note segments.
Only 64-bit little-endian ELF is understood; anything else gives None.
"""
from __future__ import annotations

import struct
from typing import NamedTuple, Optional

PT_LOAD = 1
PT_NOTE = 4
NT_GNU_BUILD_ID = 3
_ELF_TYPES = {1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}


class ElfIdentity(NamedTuple):
    elf_type: str          # "ET_EXEC", "ET_DYN", ...
    first_load_vaddr: int  # lowest PT_LOAD p_vaddr, page-aligned down
    build_id: str          # hex, '' when the file has none


def identify(path: str) -> Optional[ElfIdentity]:
    """The identity of the ELF file at ``path``; None when unreadable or not 64-bit LE ELF."""
    try:
        with open(path, "rb") as f:
            return _identify(f)
    except (OSError, struct.error, ValueError):
        return None


def _identify(f) -> Optional[ElfIdentity]:
    ident = f.read(64)
    if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        return None
    e_type, = struct.unpack_from("<H", ident, 16)
    phoff, = struct.unpack_from("<Q", ident, 32)
    phentsize, phnum = struct.unpack_from("<HH", ident, 54)
    if phnum > 256 or phentsize < 56:
        return None
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    loads = []
    notes = []
    for i in range(min(phnum, len(table) // phentsize)):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if p_type == PT_LOAD:
            loads.append(p_vaddr)
        elif p_type == PT_NOTE and p_filesz <= 1 << 16:
            notes.append((p_offset, p_filesz))
    build_id = ""
    for p_offset, p_filesz in notes:
        f.seek(p_offset)
        build_id = _gnu_build_id(f.read(p_filesz))
        if build_id:
            break
    first = (min(loads) & ~0xFFF) if loads else 0
    return ElfIdentity(_ELF_TYPES.get(e_type, "ET_NONE"), first, build_id)


def _gnu_build_id(notes: bytes) -> str:
    position = 0
    while position + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, position)
        name_end = position + 12 + ((namesz + 3) & ~3)
        if kind == NT_GNU_BUILD_ID and notes[position + 12:position + 12 + namesz].rstrip(b"\0") == b"GNU":
            return notes[name_end:name_end + descsz].hex()
        position = name_end + ((descsz + 3) & ~3)
    return ""


def build_id(path: str) -> str:
    """The GNU build-id of ``path`` ('' when it has none or cannot be read)."""
    found = identify(path)
    return found.build_id if found else ""
