"""Names for PLT stubs: ``foo@plt``, as gdb (BFD's synthetic symbols) names them.

A PLT entry has no symbol of its own; a pc in one (a thread sampled in a
call's first instruction, a frame-0 ``jmp``) would otherwise be named after
whatever symbol precedes ``.plt``.  Each entry of ``.plt``, ``.plt.sec`` and
``.plt.got`` jumps through one GOT slot (``jmp *disp(%rip)``, maybe after
``endbr64`` and with a ``bnd`` prefix); the relocation that fills that slot
(``.rela.plt`` JUMP_SLOT, ``.rela.dyn`` GLOB_DAT) names the function through
``.dynsym``.  An IRELATIVE slot (no symbol: an ifunc resolved at load) is
``*ABS*+0xADDEND@plt``, gdb's spelling.  Entries without a GOT jump (PLT0;
the lazy ``push``/``jmp`` stubs of an IBT ``.plt`` whose calls go through
``.plt.sec``) stay unnamed, as in gdb.  x86-64 only, like the rest.
"""
from __future__ import annotations

import struct

from .elf import ElfFile

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Optional, Tuple


PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_IRELATIVE = 6, 7, 37
_RELA = struct.Struct("<QQq")
_SYM_NAME = struct.Struct("<I")
_SYM_SIZE = 24
_ENDBR64 = b"\xf3\x0f\x1e\xfa"
#: The largest PLT we read (entries): a bound on what an untrusted file can make us do.
MAX_ENTRIES = 1 << 17


def _got_slot(code: bytes, address: int) -> Optional[int]:
    """The GOT address an entry at ``address`` jumps through, or None (no ``jmp *disp(%rip)`` first)."""
    at = 4 if code[:4] == _ENDBR64 else 0
    if code[at:at + 1] == b"\xf2":       # bnd
        at += 1
    if code[at:at + 2] != b"\xff\x25" or len(code) < at + 6:
        return None
    disp = struct.unpack_from("<i", code, at + 2)[0]
    return address + at + 6 + disp


def _symbol_name(elf: ElfFile, symtab_index: int, sym: int) -> Optional[str]:
    if symtab_index >= len(elf.section_list):
        return None
    symtab = elf.section_list[symtab_index]
    offset = symtab.offset + sym * _SYM_SIZE
    if sym <= 0 or offset + _SYM_SIZE > symtab.offset + symtab.size or symtab.link >= len(elf.section_list):
        return None
    strings = elf.section_list[symtab.link]
    start = _SYM_NAME.unpack_from(elf.data, offset)[0]
    if start >= strings.size:
        return None
    begin = strings.offset + start
    end = elf.data.find(b"\0", begin, strings.offset + strings.size)
    name = elf.data[begin:end if end >= 0 else strings.offset + strings.size].decode("utf-8", "replace")
    return name or None


def _indices(data, offset: int, count: int, wanted) -> Dict[int, int]:
    """``{r_offset: index}`` of the relocations (``count`` of them at ``offset``) that fill the
    ``wanted`` GOT slots; every ``r_offset`` is taken at C speed (libpython's ``.rela.dyn`` has
    ~40,000) and only set membership runs per relocation."""
    if not wanted:
        return {}
    words = memoryview(data)[offset:offset + count * _RELA.size].cast("Q")
    try:
        offsets = words[0::3].tolist()
    finally:
        words.release()
    wanted = set(wanted)
    found: Dict[int, int] = {}
    for index, slot in enumerate(offsets):
        if slot in wanted and slot not in found:
            found[slot] = index
    return found


def plt_symbols(elf: ElfFile) -> Dict[int, Tuple[str, int]]:
    """``{entry address: (name@plt, entry size)}`` for every PLT entry whose GOT slot is relocated."""
    slots: Dict[int, Tuple[int, int]] = {}     # GOT slot -> (entry address, entry size)
    for name in PLT_SECTIONS:
        sec = elf.sections.get(name)
        if sec is None or sec.type == 8 or not sec.size or not sec.flags & 4:
            continue
        size = sec.entsize if sec.entsize in (8, 16) else 16
        code = elf.data[sec.offset:sec.offset + min(sec.size, size * MAX_ENTRIES)]
        for at in range(0, len(code) - size + 1, size):
            slot = _got_slot(code[at:at + size], sec.addr + at)
            if slot is not None:
                slots.setdefault(slot, (sec.addr + at, size))
    if not slots:
        return {}
    out: Dict[int, Tuple[str, int]] = {}
    # .rela.plt first: it names the .plt/.plt.sec slots, leaving the few .plt.got ones to .rela.dyn
    for name in (".rela.plt", ".rela.dyn"):
        sec = elf.sections.get(name)
        if sec is None or sec.type != 4 or sec.entsize not in (0, _RELA.size):      # SHT_RELA
            continue
        count = sec.size // _RELA.size
        if not count or sec.offset + count * _RELA.size > len(elf.data):
            continue
        wanted = [slot for slot, entry in slots.items() if entry[0] not in out]
        at = _indices(elf.data, sec.offset, count, wanted)
        for slot, index in at.items():
            entry = slots[slot]
            if entry[0] in out:
                continue
            _offset, info, addend = _RELA.unpack_from(elf.data, sec.offset + index * _RELA.size)
            kind, sym = info & 0xFFFFFFFF, info >> 32
            if kind in (R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT) and sym:
                symbol = _symbol_name(elf, sec.link, sym)
                if symbol:
                    out[entry[0]] = (symbol.split("@")[0] + "@plt", entry[1])
            elif kind == R_X86_64_IRELATIVE:
                out[entry[0]] = ("*ABS*+0x%x@plt" % addend, entry[1])
    return out
