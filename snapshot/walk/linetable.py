"""Bytecode offset -> source line, for each line-table format CPython has used.

Formats (the layout says which one a version uses):
  * "lnotab" (3.6-3.9): pairs of (byte offset delta, signed line delta);
  * "lnotab_unsigned" (2.7): the same pairs with unsigned line deltas;
  * "linetable" (3.10): pairs of (byte length, signed line delta, -128 = no line);
  * "locations" (3.11+): the PEP 626/657 location table of Objects/locations.md.
Each table is decoded into sorted ranges and then looked up with bisect,
because code objects are immutable and the walker caches the decoded table.
Decoding never goes past ``code_size`` (the bytes of bytecode the table
describes), so its cost is bounded by the code, not by what a corrupted table
claims; the ranges are kept in flat arrays (24 bytes per entry).

``until``: decode only as far as the range holding that offset.  Why: a one-shot
dump asks one line of most code objects, and the whole table of forty of them
was a tenth of its walk; a later question past the decoded part decodes it all
(``LineTable.covers``).  A line depends only on the ranges up to its own, so the
answers are the same.
"""
from __future__ import annotations

from array import array
from bisect import bisect_right

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Tuple


#: Entries decoded from one table at most (remote data is untrusted).
MAX_ENTRIES = 1 << 20
#: Code size assumed when the caller does not know it.
UNBOUNDED = 1 << 62
#: Stored for "this range has no line".
_NO_LINE = -(1 << 62)


class LineTable:
    """Sorted (start, end, line) ranges over instruction offsets in bytes."""

    __slots__ = ("starts", "ends", "_lines", "first_line", "complete")

    def __init__(self, ranges: List[Tuple[int, int, Optional[int]]], first_line: int, complete: bool = True):
        self.starts = array("q", [r[0] for r in ranges])
        self.ends = array("q", [min(r[1], UNBOUNDED) for r in ranges])
        self._lines = array("q", [_NO_LINE if r[2] is None else r[2] for r in ranges])
        self.first_line = first_line
        #: False when decoding stopped early (``until``): offsets past the last range are unknown
        self.complete = complete

    @classmethod
    def contiguous(cls, ends: List[int], lines: List[int], first_line: int, complete: bool = True) -> "LineTable":
        """Ranges that follow each other from offset 0 (each starts where the last ended),
        given by their ends and lines (``_NO_LINE`` for none): what the 3.11+ decoder makes,
        without a tuple per instruction."""
        table = cls.__new__(cls)
        table.ends = array("q", ends)
        table.starts = array("q", [0])
        table.starts.extend(table.ends[:-1])
        del table.starts[len(ends):]    # no ranges: no starts either
        table._lines = array("q", lines)
        table.first_line = first_line
        table.complete = complete
        return table

    def covers(self, offset: int) -> bool:
        """Whether ``line_for(offset)`` is the answer the whole table gives."""
        return self.complete or (len(self.ends) > 0 and offset < self.ends[-1])

    @property
    def lines(self) -> List[Optional[int]]:
        return [None if line == _NO_LINE else line for line in self._lines]

    def line_for(self, offset: int) -> int:
        """Line of the instruction at byte ``offset``; the first line if unknown."""
        index = bisect_right(self.starts, offset) - 1
        if 0 <= index < len(self.starts) and offset < self.ends[index]:
            lines = self._lines
            line = lines[index]
            if line != _NO_LINE:
                return line
            # An instruction without a line (e.g. a cache entry or artificial
            # code) takes the closest earlier known line, as tracebacks do.
            for back in range(index - 1, max(index - 64, -1), -1):
                if lines[back] != _NO_LINE:
                    return lines[back]
        return self.first_line


def _signed_byte(b: int) -> int:
    return b - 256 if b >= 128 else b


def decode_lnotab(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                  signed: bool = True, until: int = UNBOUNDED) -> LineTable:
    """3.6-3.9 ``co_lnotab``: the line of address A is the line after all pairs whose address is <= A.

    Line increments are signed bytes from 3.6 (bpo-26107), unsigned before (2.7).
    """
    line_delta_of = _signed_byte if signed else int
    ranges = []
    line = first_line
    address = 0
    start = 0
    for i in range(0, min(len(table), 2 * MAX_ENTRIES) - 1, 2):
        if address >= code_size:
            break
        address_delta, line_delta = table[i], line_delta_of(table[i + 1])
        if address_delta:
            ranges.append((start, address + address_delta, line))
            start = address + address_delta
            if start > until:
                return LineTable(ranges, first_line, complete=False)
        address += address_delta
        line += line_delta
    ranges.append((start, 1 << 62, line))
    return LineTable(ranges, first_line)


def decode_lnotab_unsigned(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                           until: int = UNBOUNDED) -> LineTable:
    """2.7 ``co_lnotab``: as 3.6+, but line increments are unsigned bytes."""
    return decode_lnotab(table, first_line, code_size, signed=False, until=until)


def decode_linetable_310(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                         until: int = UNBOUNDED) -> LineTable:
    """3.10 ``co_linetable``: (start delta, line delta) pairs; -128 means no line."""
    ranges = []
    line = first_line
    end = 0
    for i in range(0, min(len(table), 2 * MAX_ENTRIES) - 1, 2):
        if end >= code_size:
            break
        start_delta, line_delta = table[i], _signed_byte(table[i + 1])
        start = end
        end += start_delta
        if line_delta == -128:
            if start_delta:
                ranges.append((start, end, None))
            continue
        line += line_delta
        if start_delta:
            ranges.append((start, end, line))
            if end > until:
                return LineTable(ranges, first_line, complete=i + 2 >= len(table) or end >= code_size)
    return LineTable(ranges, first_line)


def decode_locations(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                     until: int = UNBOUNDED) -> LineTable:
    """3.11+ location table; offsets are in bytes (2 per code unit).

    Entries follow each other (each starts where the last ended), so only their ends and
    lines are kept, and varints are read inline: this loop runs for every instruction of
    every new code object."""
    ends = []
    lines = []
    end_append = ends.append
    line_append = lines.append
    line = first_line
    position = 0
    address = 0
    size = len(table)
    while position < size and address < code_size:
        first = table[position]
        position += 1
        if not first & 0x80:
            break  # corrupt: every entry starts with the high bit set
        code = (first >> 3) & 15
        address += ((first & 7) + 1) * 2
        if code < 10:
            position += 1           # short form: a column byte
            line_append(line)
        elif code < 13:
            line += code - 10       # one-line form: line delta in the code, two column bytes
            position += 2
            line_append(line)
        elif code == 15:
            line_append(_NO_LINE)
        else:
            # 13: no columns, 14: long form; both start with a signed varint line delta, and
            # 14 has three more varints (end line delta, start and end column), skipped
            for varint in range(1 if code == 13 else 4):
                value = shift = 0
                while position < size:
                    b = table[position]
                    position += 1
                    value |= (b & 63) << shift
                    shift += 6
                    if not b & 64 or shift > 60:
                        break
                if not varint:
                    line += -(value >> 1) if value & 1 else value >> 1
            line_append(line)
        end_append(address)
        if address > until:
            return LineTable.contiguous(ends, lines, first_line, complete=position >= size or address >= code_size)
        if len(ends) >= MAX_ENTRIES:
            break
    return LineTable.contiguous(ends, lines, first_line)


DECODERS = {
    "lnotab": decode_lnotab,
    "lnotab_unsigned": decode_lnotab_unsigned,
    "linetable": decode_linetable_310,
    "locations": decode_locations,
}
