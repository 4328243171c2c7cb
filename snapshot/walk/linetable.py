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
claims; the ranges are kept packed (16 bytes per entry).

3.11+ tables are read in C where the host is 3.11+ too (``decode_locations``), whole.

``until`` (the decoders in Python): decode only as far as the range holding that offset.  Why: a one-shot
dump asks one line of most code objects, and the whole table of forty of them
was a tenth of its walk; a later question past the decoded part decodes it all
(``LineTable.covers``).  A line depends only on the ranges up to its own, so the
answers are the same.
"""
from __future__ import annotations

import struct

from ..hostcompat import LOCATIONS_IN_C

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional


#: Entries decoded from one table at most (remote data is untrusted).
MAX_ENTRIES = 1 << 20
#: Code size assumed when the caller does not know it.
UNBOUNDED = 1 << 62
#: Stored for "this range has no line".
_NO_LINE = -(1 << 62)
#: Largest code (bytes) whose table is read through a code object of our own (its zeroed
#: bytecode is allocated for it); past it, and on hosts before 3.11, the tables are read in Python.
MAX_CODE_IN_C = 1 << 22
#: The code object whose copies carry a target's table (``_locations_in_c``).
_CARRIER = (lambda: None).__code__ if LOCATIONS_IN_C else None


class LineTable:
    """Consecutive ranges over instruction offsets in bytes, from offset 0, each with a line.

    Every format's ranges follow each other (each starts where the one before it ended), so
    only the ends and lines are kept, packed (16 bytes a range, no ``array`` module: importing
    it imports ``collections``, a millisecond of every start)."""

    __slots__ = ("ends", "_lines", "first_line", "complete")

    def __init__(self, ends: List[int], lines: List[int], first_line: int, complete: bool = True):
        """``lines``: ``_NO_LINE`` for a range without one."""
        count = len(ends)
        self.ends = memoryview(struct.pack("%dq" % count, *ends)).cast("q")
        self._lines = memoryview(struct.pack("%dq" % count, *lines)).cast("q")
        self.first_line = first_line
        #: False when decoding stopped early (``until``): offsets past the last range are unknown
        self.complete = complete

    @property
    def starts(self) -> List[int]:
        return [0] + list(self.ends[:-1]) if len(self.ends) else []

    @property
    def lines(self) -> List[Optional[int]]:
        return [None if line == _NO_LINE else line for line in self._lines]

    def covers(self, offset: int) -> bool:
        """Whether ``line_for(offset)`` is the answer the whole table gives."""
        return self.complete or (len(self.ends) > 0 and offset < self.ends[-1])

    def line_for(self, offset: int) -> int:
        """Line of the instruction at byte ``offset``; the first line if unknown."""
        # The range holding ``offset`` is the first to end after it: a binary search by hand
        # (``bisect`` is a shared library to load, for a few calls per code object).
        ends = self.ends
        index, high = 0, len(ends)
        while index < high:
            middle = (index + high) >> 1
            if ends[middle] <= offset:
                index = middle + 1
            else:
                high = middle
        if 0 <= offset and index < len(ends):
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
    ends: List[int] = []
    lines: List[int] = []
    line = first_line
    address = 0
    for i in range(0, min(len(table), 2 * MAX_ENTRIES) - 1, 2):
        if address >= code_size:
            break
        address_delta, line_delta = table[i], line_delta_of(table[i + 1])
        if address_delta:
            ends.append(address + address_delta)
            lines.append(line)
            if address + address_delta > until:
                return LineTable(ends, lines, first_line, complete=False)
        address += address_delta
        line += line_delta
    ends.append(UNBOUNDED)
    lines.append(line)
    return LineTable(ends, lines, first_line)


def decode_lnotab_unsigned(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                           until: int = UNBOUNDED) -> LineTable:
    """2.7 ``co_lnotab``: as 3.6+, but line increments are unsigned bytes."""
    return decode_lnotab(table, first_line, code_size, signed=False, until=until)


def decode_linetable_310(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                         until: int = UNBOUNDED) -> LineTable:
    """3.10 ``co_linetable``: (start delta, line delta) pairs; -128 means no line."""
    ends: List[int] = []
    lines: List[int] = []
    line = first_line
    end = 0
    for i in range(0, min(len(table), 2 * MAX_ENTRIES) - 1, 2):
        if end >= code_size:
            break
        start_delta, line_delta = table[i], _signed_byte(table[i + 1])
        end += start_delta
        if line_delta != -128:
            line += line_delta
        if start_delta:
            ends.append(end)
            lines.append(_NO_LINE if line_delta == -128 else line)
            if end > until:
                return LineTable(ends, lines, first_line, complete=i + 2 >= len(table) or end >= code_size)
    return LineTable(ends, lines, first_line)


def decode_locations(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                     until: int = UNBOUNDED) -> LineTable:
    """3.11+ location table; offsets are in bytes (2 per code unit).

    On a 3.11+ host the table is read in C, whole (``_locations_in_c``): a dump's first walk
    decoded some forty tables, and this loop in Python was an eighth of its byte code."""
    if _CARRIER is not None:
        found = _locations_in_c(table, first_line, code_size)
        if found is not None:
            return found
    return decode_locations_in_python(table, first_line, code_size, until)


def _locations_in_c(table: bytes, first_line: int, code_size: int) -> Optional[LineTable]:
    """The table read by the host's own ``co_lines()``, from a copy of a code object of ours
    carrying it (zeroed byte code of the target's size); None where that cannot be used.

    Why it is safe with a table that is garbage: CPython finds each entry's end by scanning
    forward, within the table, for the next byte with the high bit set (which every entry's
    first byte has, so the first byte must have it too: checked), and a varint cut off by the
    table's end stops at the NUL that ends every bytes object.  The lines may then be garbage;
    the read never leaves the table and ends with it."""
    if not table or table[0] < 0x80 or not 0 < code_size <= MAX_CODE_IN_C or code_size & 1:
        return None
    try:
        carrier = _CARRIER.replace(co_code=bytes(code_size), co_linetable=bytes(table), co_firstlineno=first_line)
        ranges = list(carrier.co_lines())
    except (ValueError, TypeError, OverflowError, SystemError, MemoryError):
        return None
    if ranges and ranges[-1][0] >= code_size:  # a table longer than its code: cut as in Python
        ranges = [r for r in ranges if r[0] < code_size]
    if not ranges:
        return LineTable([], [], first_line)
    _, ends, lines = zip(*ranges)
    if None in lines:
        lines = [_NO_LINE if line is None else line for line in lines]
    return LineTable(ends, lines, first_line)


def decode_locations_in_python(table: bytes, first_line: int, code_size: int = UNBOUNDED,
                               until: int = UNBOUNDED) -> LineTable:
    """``decode_locations`` in Python: hosts before 3.11, and partial decoding (``until``).

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
            return LineTable(ends, lines, first_line, complete=position >= size or address >= code_size)
        if len(ends) >= MAX_ENTRIES:
            break
    return LineTable(ends, lines, first_line)


DECODERS = {
    "lnotab": decode_lnotab,
    "lnotab_unsigned": decode_lnotab_unsigned,
    "linetable": decode_linetable_310,
    "locations": decode_locations,
}
