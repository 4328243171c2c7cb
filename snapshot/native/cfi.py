"""DWARF call frame information from ``.eh_frame``: one FDE at a time, our own row evaluator.

The FDE for a pc is found through ``.eh_frame_hdr``'s sorted table by
binary search directly on the mapped bytes; the FDE and its CIE are parsed
with ``struct``; the CIE's initial instructions and the FDE's instructions
are run up to the pc.  The result is a *row*, a small tuple that the
unwinder applies and the caches store:

    row = (cfa, rules, signal_frame, ra_column)
    cfa   = (CFA_REGISTER, regno, offset) | (CFA_EXPRESSION, expr_bytes)
    rules = ((regno, kind, arg), ...)       kind in OFFSET ... SAME_VALUE below

A missing ``.eh_frame_hdr`` gets a one-time index of ``.eh_frame``
(rare: every binary here has one).
"""
from __future__ import annotations

import struct
from bisect import bisect_right

from ..errors import SnapshotError
from .dwarfexpr import sleb, uleb
from .elf import PT_GNU_EH_FRAME, ElfFile

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


CFA_REGISTER = 0
CFA_EXPRESSION = 1

OFFSET = 1        # saved at CFA + arg
VAL_OFFSET = 2    # value is CFA + arg
REGISTER = 3      # in register arg
EXPRESSION = 4    # saved at the address expression arg computes (CFA pushed first)
VAL_EXPRESSION = 5
UNDEFINED = 6
SAME_VALUE = 7

#: Bound on CFI instructions run for one row (files are untrusted).
MAX_INSTRUCTIONS = 100000

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class CfiError(SnapshotError):
    """Call frame information was malformed (truncated FDE, unknown opcode, bad encoding)."""

    exit_code = 7
    hint = "the library's unwind tables could not be read; its frames end the native stack"


class Cie:
    __slots__ = ("code_align", "data_align", "ra_column", "fde_encoding", "lsda_encoding",
                 "has_z", "signal", "instructions", "initial")

    def __init__(self, code_align, data_align, ra_column, fde_encoding, lsda_encoding, has_z,
                 signal, instructions):
        self.code_align = code_align
        self.data_align = data_align
        self.ra_column = ra_column
        self.fde_encoding = fde_encoding
        self.lsda_encoding = lsda_encoding
        self.has_z = has_z
        self.signal = signal
        self.instructions = instructions
        self.initial = None  # (cfa, rules) after the initial instructions, computed once


class Fde:
    __slots__ = ("start", "end", "cie", "instructions")

    def __init__(self, start, end, cie, instructions):
        self.start = start
        self.end = end
        self.cie = cie
        self.instructions = instructions


def read_encoded(data, pos: int, encoding: int, pos_vaddr: int, data_base: int = 0,
                 func_base: int = 0) -> Tuple[int, int]:
    """A DW_EH_PE-encoded pointer at ``data[pos]`` whose own address is ``pos_vaddr``."""
    if encoding == 0xFF:
        return 0, pos
    fmt = encoding & 0x0F
    if fmt == 0x00:
        value = _U64.unpack_from(data, pos)[0]
        pos += 8
    elif fmt == 0x01:
        value, pos = uleb(data, pos)
    elif fmt == 0x02:
        value = struct.unpack_from("<H", data, pos)[0]
        pos += 2
    elif fmt == 0x03:
        value = _U32.unpack_from(data, pos)[0]
        pos += 4
    elif fmt == 0x04:
        value = _U64.unpack_from(data, pos)[0]
        pos += 8
    elif fmt == 0x09:
        value, pos = sleb(data, pos)
    elif fmt == 0x0A:
        value = struct.unpack_from("<h", data, pos)[0]
        pos += 2
    elif fmt == 0x0B:
        value = struct.unpack_from("<i", data, pos)[0]
        pos += 4
    elif fmt == 0x0C:
        value = struct.unpack_from("<q", data, pos)[0]
        pos += 8
    else:
        raise CfiError("unknown pointer encoding 0x%02x" % encoding)
    app = encoding & 0x70
    if app == 0x10:
        value += pos_vaddr
    elif app == 0x30:
        value += data_base
    elif app == 0x40:
        value += func_base
    elif app not in (0x00,):
        raise CfiError("unsupported pointer application 0x%02x" % encoding)
    return value & 0xFFFFFFFFFFFFFFFF, pos


_FIXED_SIZE = {0x02: 2, 0x03: 4, 0x04: 8, 0x0A: 2, 0x0B: 4, 0x0C: 8, 0x00: 8}


class EhFrame:
    """The ``.eh_frame`` of one file, searched through ``.eh_frame_hdr``."""

    def __init__(self, elf: ElfFile):
        self.elf = elf
        self.data = elf.data
        self._cies: Dict[int, Cie] = {}
        self._index: Optional[Tuple[List[int], List[int]]] = None
        self.hdr_vaddr = None
        self.table_offset = 0
        self.table_count = 0
        self.table_encoding = 0xFF
        self.eh_frame_vaddr = None
        hdr = elf.sections.get(".eh_frame_hdr")
        hdr_vaddr = hdr_off = None
        if hdr is not None and elf.has_bits(".eh_frame_hdr"):
            hdr_vaddr, hdr_off = hdr.addr, hdr.offset
        else:
            for seg in elf.segments:
                if seg.type == PT_GNU_EH_FRAME and seg.filesz >= 4:
                    hdr_vaddr, hdr_off = seg.vaddr, seg.offset
        if hdr_off is not None:
            try:
                self._parse_hdr(hdr_vaddr, hdr_off)
            except (struct.error, CfiError, IndexError):
                self.hdr_vaddr = None
        if self.eh_frame_vaddr is None:
            sec = elf.sections.get(".eh_frame")
            if sec is not None and elf.has_bits(".eh_frame"):
                self.eh_frame_vaddr = sec.addr
        self.eh_frame_offset = None
        self.eh_frame_end = None
        if self.eh_frame_vaddr is not None:
            self.eh_frame_offset = elf.vaddr_to_offset(self.eh_frame_vaddr)
            sec = elf.sections.get(".eh_frame")
            if sec is not None and sec.offset == self.eh_frame_offset:
                self.eh_frame_end = sec.offset + sec.size
            else:
                self.eh_frame_end = len(self.data)

    @property
    def available(self) -> bool:
        return self.eh_frame_offset is not None

    def _parse_hdr(self, vaddr: int, off: int) -> None:
        data = self.data
        version, ptr_enc, count_enc, table_enc = data[off], data[off + 1], data[off + 2], data[off + 3]
        if version != 1:
            raise CfiError("unknown .eh_frame_hdr version %d" % version)
        pos = off + 4
        self.eh_frame_vaddr, pos = read_encoded(data, pos, ptr_enc, vaddr + (pos - off), vaddr)
        count, pos = read_encoded(data, pos, count_enc, vaddr + (pos - off), vaddr)
        if table_enc == 0xFF or count == 0 or (table_enc & 0x0F) not in _FIXED_SIZE:
            return  # no usable search table: the index built from .eh_frame serves
        self.hdr_vaddr = vaddr
        self.hdr_offset = off
        self.table_offset = pos
        self.table_count = min(count, (len(data) - pos) // (2 * _FIXED_SIZE[table_enc & 0x0F]))
        self.table_encoding = table_enc

    # -- FDE lookup ------------------------------------------------------------------------
    def find_fde(self, vaddr: int) -> Optional[Fde]:
        """The FDE covering ``vaddr`` (file virtual address), or None."""
        try:
            offset = self._fde_offset_for(vaddr)
            if offset is None:
                return None
            fde = self.parse_fde(offset)
        except (struct.error, IndexError) as e:
            raise CfiError("%s: truncated call frame information (%s)" % (self.elf.path, e)) from None
        if fde is None or not (fde.start <= vaddr < fde.end):
            return None
        return fde

    def _fde_offset_for(self, vaddr: int) -> Optional[int]:
        if self.hdr_vaddr is not None:
            enc = self.table_encoding
            size = _FIXED_SIZE[enc & 0x0F]
            data, base, hv = self.data, self.table_offset, self.hdr_vaddr
            ho = self.hdr_offset
            lo, hi = 0, self.table_count
            while lo < hi:       # first entry whose start > vaddr
                mid = (lo + hi) // 2
                p = base + mid * 2 * size
                start, _ = read_encoded(data, p, enc, hv + (p - ho), hv)
                if start > vaddr:
                    hi = mid
                else:
                    lo = mid + 1
            if lo == 0:
                return None
            p = base + (lo - 1) * 2 * size + size
            fde_vaddr, _ = read_encoded(data, p, enc, hv + (p - ho), hv)
            return self._offset_of(fde_vaddr)
        if not self.available:
            return None
        starts, offsets = self._linear_index()
        i = bisect_right(starts, vaddr) - 1
        return offsets[i] if i >= 0 else None

    def _offset_of(self, vaddr: int) -> Optional[int]:
        return self.eh_frame_offset + (vaddr - self.eh_frame_vaddr)

    def _vaddr_of(self, offset: int) -> int:
        return self.eh_frame_vaddr + (offset - self.eh_frame_offset)

    def _linear_index(self) -> Tuple[List[int], List[int]]:
        if self._index is None:
            pairs = []
            pos = self.eh_frame_offset
            end = self.eh_frame_end
            while pos + 4 <= end and len(pairs) < 1000000:
                length = _U32.unpack_from(self.data, pos)[0]
                if length == 0:
                    break
                header = 4
                if length == 0xFFFFFFFF:
                    length = _U64.unpack_from(self.data, pos + 4)[0]
                    header = 12
                cie_id = _U32.unpack_from(self.data, pos + header)[0]
                if cie_id != 0:
                    try:
                        fde = self.parse_fde(pos)
                        if fde is not None:
                            pairs.append((fde.start, pos))
                    except (CfiError, struct.error, IndexError):
                        pass
                pos += header + length
            pairs.sort()
            self._index = ([p[0] for p in pairs], [p[1] for p in pairs])
        return self._index

    # -- parsing ----------------------------------------------------------------------------
    def parse_fde(self, offset: int) -> Optional[Fde]:
        data = self.data
        length = _U32.unpack_from(data, offset)[0]
        pos = offset + 4
        if length == 0xFFFFFFFF:
            length = _U64.unpack_from(data, pos)[0]
            pos += 8
        if length == 0:
            return None
        end = pos + length
        if end > len(data):
            raise CfiError("FDE at 0x%x runs past the end of %s" % (offset, self.elf.path))
        cie_pointer = _U32.unpack_from(data, pos)[0]
        if cie_pointer == 0:
            return None  # a CIE, not an FDE
        cie = self.parse_cie(pos - cie_pointer)
        pos += 4
        enc = cie.fde_encoding
        start, pos = read_encoded(data, pos, enc, self._vaddr_of(pos))
        length_value, pos = read_encoded(data, pos, enc & 0x0F, 0)
        if cie.has_z:
            aug_len, pos = uleb(data, pos)
            pos += aug_len
        return Fde(start, start + length_value, cie, bytes(data[pos:end]))

    def parse_cie(self, offset: int) -> Cie:
        cie = self._cies.get(offset)
        if cie is not None:
            return cie
        data = self.data
        length = _U32.unpack_from(data, offset)[0]
        pos = offset + 4
        if length == 0xFFFFFFFF:
            length = _U64.unpack_from(data, pos)[0]
            pos += 8
        end = pos + length
        if _U32.unpack_from(data, pos)[0] != 0 or end > len(data):
            raise CfiError("bad CIE at 0x%x in %s" % (offset, self.elf.path))
        pos += 4
        version = data[pos]
        pos += 1
        nul = data.find(b"\0", pos, end)
        if nul < 0:
            raise CfiError("unterminated CIE augmentation in %s" % self.elf.path)
        augmentation = bytes(data[pos:nul]).decode("latin-1")
        pos = nul + 1
        if "eh" in augmentation:
            pos += 8
        code_align, pos = uleb(data, pos)
        data_align, pos = sleb(data, pos)
        if version == 1:
            ra_column = data[pos]
            pos += 1
        else:
            ra_column, pos = uleb(data, pos)
        fde_encoding = 0x00
        lsda_encoding = 0xFF
        signal = False
        has_z = augmentation.startswith("z")
        if has_z:
            aug_len, pos = uleb(data, pos)
            aug_end = pos + aug_len
            for ch in augmentation[1:]:
                if ch == "R":
                    fde_encoding = data[pos]
                    pos += 1
                elif ch == "L":
                    lsda_encoding = data[pos]
                    pos += 1
                elif ch == "P":
                    enc = data[pos]
                    pos += 1
                    _, pos = read_encoded(data, pos, enc, self._vaddr_of(pos))
                elif ch == "S":
                    signal = True
                elif ch == "B":
                    pass
                else:
                    break  # unknown: the length lets us skip the rest
            pos = aug_end
        elif augmentation and augmentation not in ("eh",):
            raise CfiError("unknown CIE augmentation %r in %s" % (augmentation, self.elf.path))
        cie = Cie(code_align, data_align, ra_column, fde_encoding, lsda_encoding, has_z, signal,
                  bytes(data[pos:end]))
        self._cies[offset] = cie
        return cie

    # -- rows --------------------------------------------------------------------------------
    def row_for(self, vaddr: int):
        """The unwind row at file virtual address ``vaddr``, or None when no FDE covers it."""
        fde = self.find_fde(vaddr)
        if fde is None:
            return None
        return evaluate_fde(fde, vaddr)


def evaluate_fde(fde: Fde, vaddr: int):
    """Run the CIE's and the FDE's instructions up to ``vaddr``; the row tuple."""
    cie = fde.cie
    if cie.initial is None:
        cfa, rules, _ = execute(cie.instructions, cie, fde.start, None, None, None)
        cie.initial = (cfa, dict(rules))
    cfa, rules, _ = execute(fde.instructions, cie, fde.start, vaddr, cie.initial[0], dict(cie.initial[1]),
                            cie.initial[1])
    if cfa is None:
        raise CfiError("FDE at 0x%x defines no CFA" % fde.start)
    return (cfa, tuple(sorted((reg, rule[0], rule[1]) for reg, rule in rules.items())), cie.signal,
            cie.ra_column)


def execute(code: bytes, cie: Cie, loc: int, target: Optional[int], cfa, rules, initial=None):
    """Interpret CFA instructions from ``loc`` while the row's location is <= ``target``.

    ``target`` None runs everything (the CIE's initial instructions).
    Returns (cfa, rules, location reached).
    """
    if rules is None:
        rules = {}
    initial = initial if initial is not None else {}
    stack = []
    pos = 0
    end = len(code)
    caf = cie.code_align
    daf = cie.data_align
    count = 0
    try:
        while pos < end:
            count += 1
            if count > MAX_INSTRUCTIONS:
                raise CfiError("too many CFI instructions")
            op = code[pos]
            pos += 1
            high = op & 0xC0
            if high == 0x40:                      # advance_loc
                loc += (op & 0x3F) * caf
                if target is not None and loc > target:
                    break
                continue
            if high == 0x80:                      # offset
                off, pos = uleb(code, pos)
                rules[op & 0x3F] = (OFFSET, off * daf)
                continue
            if high == 0xC0:                      # restore
                _restore(rules, initial, op & 0x3F)
                continue
            if op in (0x02, 0x03, 0x04, 0x01):
                if op == 0x02:
                    delta = code[pos]
                    pos += 1
                elif op == 0x03:
                    delta = struct.unpack_from("<H", code, pos)[0]
                    pos += 2
                elif op == 0x04:
                    delta = _U32.unpack_from(code, pos)[0]
                    pos += 4
                else:                             # set_loc (absolute pointers only make sense here)
                    new, pos = read_encoded(code, pos, cie.fde_encoding & 0x0F, 0)
                    if target is not None and new > target:
                        break
                    loc = new
                    continue
                loc += delta * caf
                if target is not None and loc > target:
                    break
            elif op == 0x00:                      # nop
                pass
            elif op == 0x05:                      # offset_extended
                reg, pos = uleb(code, pos)
                off, pos = uleb(code, pos)
                rules[reg] = (OFFSET, off * daf)
            elif op == 0x06:                      # restore_extended
                reg, pos = uleb(code, pos)
                _restore(rules, initial, reg)
            elif op == 0x07:                      # undefined
                reg, pos = uleb(code, pos)
                rules[reg] = (UNDEFINED, 0)
            elif op == 0x08:                      # same_value
                reg, pos = uleb(code, pos)
                rules[reg] = (SAME_VALUE, 0)
            elif op == 0x09:                      # register
                reg, pos = uleb(code, pos)
                reg2, pos = uleb(code, pos)
                rules[reg] = (REGISTER, reg2)
            elif op == 0x0A:                      # remember_state
                stack.append((cfa, dict(rules)))
            elif op == 0x0B:                      # restore_state
                if not stack:
                    raise CfiError("DW_CFA_restore_state without remember_state")
                cfa, rules = stack.pop()
            elif op == 0x0C:                      # def_cfa
                reg, pos = uleb(code, pos)
                off, pos = uleb(code, pos)
                cfa = (CFA_REGISTER, reg, off)
            elif op == 0x0D:                      # def_cfa_register
                reg, pos = uleb(code, pos)
                cfa = (CFA_REGISTER, reg, cfa[2] if cfa and cfa[0] == CFA_REGISTER else 0)
            elif op == 0x0E:                      # def_cfa_offset
                off, pos = uleb(code, pos)
                cfa = (CFA_REGISTER, cfa[1] if cfa and cfa[0] == CFA_REGISTER else 7, off)
            elif op == 0x0F:                      # def_cfa_expression
                size, pos = uleb(code, pos)
                cfa = (CFA_EXPRESSION, bytes(code[pos:pos + size]))
                pos += size
            elif op == 0x10 or op == 0x16:        # expression / val_expression
                reg, pos = uleb(code, pos)
                size, pos = uleb(code, pos)
                rules[reg] = (EXPRESSION if op == 0x10 else VAL_EXPRESSION, bytes(code[pos:pos + size]))
                pos += size
            elif op == 0x11:                      # offset_extended_sf
                reg, pos = uleb(code, pos)
                off, pos = sleb(code, pos)
                rules[reg] = (OFFSET, off * daf)
            elif op == 0x12:                      # def_cfa_sf
                reg, pos = uleb(code, pos)
                off, pos = sleb(code, pos)
                cfa = (CFA_REGISTER, reg, off * daf)
            elif op == 0x13:                      # def_cfa_offset_sf
                off, pos = sleb(code, pos)
                cfa = (CFA_REGISTER, cfa[1] if cfa and cfa[0] == CFA_REGISTER else 7, off * daf)
            elif op == 0x14:                      # val_offset
                reg, pos = uleb(code, pos)
                off, pos = uleb(code, pos)
                rules[reg] = (VAL_OFFSET, off * daf)
            elif op == 0x15:                      # val_offset_sf
                reg, pos = uleb(code, pos)
                off, pos = sleb(code, pos)
                rules[reg] = (VAL_OFFSET, off * daf)
            elif op == 0x2E:                      # GNU_args_size: only matters for landing pads
                _, pos = uleb(code, pos)
            elif op == 0x2F:                      # GNU_negative_offset_extended
                reg, pos = uleb(code, pos)
                off, pos = uleb(code, pos)
                rules[reg] = (OFFSET, -off * daf)
            elif op == 0x2D:                      # GNU_window_save (SPARC): meaningless here
                pass
            else:
                raise CfiError("unknown CFI opcode 0x%02x" % op)
    except (IndexError, struct.error):
        raise CfiError("truncated CFI instructions") from None
    return cfa, rules, loc


def _restore(rules, initial, reg: int) -> None:
    if reg in initial:
        rules[reg] = initial[reg]
    else:
        rules.pop(reg, None)
