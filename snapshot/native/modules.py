"""The target's mapped binaries as the unwinder sees them: address -> module, CFI and symbols.

Built from ``process.mapped_files()`` (load bias, build-id, a local path to
open) and ``process.maps()`` (which ranges are executable).  ELF files are
opened lazily, once; symbol tables and CFI rows are shared between every
process that maps the same build-id.
"""
from __future__ import annotations

from bisect import bisect_right

from . import cache
from .cfi import CfiError, EhFrame
from .elf import ElfFile, ElfFormatError
from .symbols import SymbolTable, load_symbols

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


#: Shared by every unwinder in this process: the same build-id means the same bytes.
_ROWS: Dict[str, dict] = {}
_SYMBOLS: Dict[str, SymbolTable] = {}
_DIRTY: set = set()


class Module:
    """One mapped ELF file."""

    def __init__(self, path: str, start: int, end: int, load_bias: int, build_id: str, local_path: str):
        self.path = path
        self.start = start
        self.end = end
        self.load_bias = load_bias
        self.build_id = build_id
        self.local_path = local_path
        self._elf: Optional[ElfFile] = None
        self._eh: Optional[EhFrame] = None
        self._broken = False
        self._symbols: Optional[SymbolTable] = None
        self._rows: Optional[dict] = None

    @property
    def rows(self) -> dict:
        """Decoded CFI rows by file address, shared by build-id; read from the disk cache on
        first use (only modules with frames on a stack pay for it)."""
        rows = self._rows
        if rows is None:
            rows = {}
            if self.build_id:
                shared = _ROWS.get(self.build_id)
                if shared is None:
                    shared = _ROWS[self.build_id] = {}
                    stored = cache.load("rows", self.build_id)
                    if isinstance(stored, dict):
                        shared.update(stored)
                rows = shared
            self._rows = rows
        return rows

    @rows.setter
    def rows(self, value: dict) -> None:
        self._rows = value

    @property
    def elf(self) -> Optional[ElfFile]:
        if self._elf is None and not self._broken:
            try:
                self._elf = ElfFile(self.local_path)
            except ElfFormatError:
                self._broken = True
        return self._elf

    @property
    def eh(self) -> Optional[EhFrame]:
        if self._eh is None and self.elf is not None:
            self._eh = EhFrame(self.elf)
        return self._eh

    def row(self, vaddr: int):
        """The CFI row at file address ``vaddr``: a tuple, or None (no FDE / unreadable CFI)."""
        rows = self._rows if self._rows is not None else self.rows
        try:
            return rows[vaddr]
        except KeyError:
            pass
        eh = self.eh
        row = None
        if eh is not None and eh.available:
            try:
                row = eh.row_for(vaddr)
            except CfiError:
                row = None
        rows[vaddr] = row
        if self.build_id:
            _DIRTY.add(self.build_id)
        return row

    @property
    def symbols(self) -> SymbolTable:
        table = self._symbols
        if table is not None:
            return table
        table = _SYMBOLS.get(self.build_id) if self.build_id else None
        if table is None:
            elf = self.elf
            table = load_symbols(elf, self.build_id) if elf is not None else SymbolTable([], [], [])
            if self.build_id:
                _SYMBOLS[self.build_id] = table
        self._symbols = table
        return table


class ModuleMap:
    """Address lookups over the target's modules and executable mappings."""

    def __init__(self, mapped_files, maps, previous: Optional["ModuleMap"] = None):
        known = {}
        if previous is not None:
            known = {(m.path, m.start, m.end, m.load_bias, m.build_id): m for m in previous.modules}
        modules = []
        for m in mapped_files:
            key = (m.path, m.start, m.end, m.load_bias, m.build_id)
            modules.append(known.get(key) or Module(m.path, m.start, m.end, m.load_bias, m.build_id,
                                                    m.local_path))
        self.modules: List[Module] = sorted(modules, key=lambda m: m.start)
        self.maps = list(maps)
        self._starts = [m.start for m in self.modules]
        executable = sorted((m.start, m.end, m.path) for m in maps if "x" in m.perms)
        self._exec = executable
        self._exec_starts = [e[0] for e in executable]
        self._all = sorted((m.start, m.end, m.path) for m in maps)
        self._all_starts = [e[0] for e in self._all]

    def module_at(self, address: int) -> Optional[Module]:
        i = bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.modules[i].end:
            return self.modules[i]
        return None

    def executable(self, address: int) -> Optional[Tuple[int, int, str]]:
        """The executable mapping (start, end, path) holding ``address``, or None."""
        i = bisect_right(self._exec_starts, address) - 1
        if i >= 0 and address < self._exec[i][1]:
            return self._exec[i]
        return None

    def mapping(self, address: int) -> Optional[Tuple[int, int, str]]:
        i = bisect_right(self._all_starts, address) - 1
        if i >= 0 and address < self._all[i][1]:
            return self._all[i]
        return None


def flush_caches() -> None:
    """Write the rows learnt since the last flush to the disk cache (one file per build-id)."""
    for build_id in list(_DIRTY):
        rows = _ROWS.get(build_id)
        if rows:
            cache.store("rows", build_id, dict(rows))
        _DIRTY.discard(build_id)
