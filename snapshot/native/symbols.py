"""Function symbols of one binary: ``.symtab``/``.dynsym`` parsed with ``struct``, bisected.

A stripped file (Debian's ``/usr/bin/python3.11``) has only ``.dynsym``;
its separate debug file, found by build-id under ``/usr/lib/debug/.build-id``
or by ``.gnu_debuglink``, is used only if its build-id is the same (a debug
file of another package version would name the wrong functions).  PLT stubs
are named ``foo@plt`` as gdb names them (plt.py).  Tables are cached on disk
by build-id.  C++ names are demangled with ``c++filt``
(binutils) in one batched call per binary when it is on PATH; without it
they stay mangled.
"""
from __future__ import annotations

import os
import struct
from bisect import bisect_right

from . import cache
from .elf import ElfFile, ElfFormatError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Sequence, Tuple


DEBUG_ROOTS = ("/usr/lib/debug",)
#: More debug directories (each holding ``.build-id/xx/rest.debug``), ``os.pathsep``-separated,
#: searched before the default; also ``add_debug_dirs`` (the CLI's ``--debug-dir``).
DEBUG_DIRS_ENV = "PYSPY_REPL_DEBUG_DIRS"
_EXTRA_ROOTS: List[str] = []


def add_debug_dirs(dirs: Sequence[str]) -> None:
    """Search these debug directories too (first), for every binary loaded from now on."""
    for d in dirs:
        if d and d not in _EXTRA_ROOTS:
            _EXTRA_ROOTS.append(d)


def debug_roots() -> Tuple[str, ...]:
    """Where separate debug files are looked for: ``add_debug_dirs``, the environment, the default."""
    env = [d for d in os.environ.get(DEBUG_DIRS_ENV, "").split(os.pathsep) if d]
    out: List[str] = []
    for d in _EXTRA_ROOTS + env + list(DEBUG_ROOTS):
        if d not in out:
            out.append(d)
    return tuple(out)
_SYM = struct.Struct("<IBBHQQ")
STT_NOTYPE, STT_FUNC, STT_IFUNC = 0, 2, 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHF_EXECINSTR = 4
#: The disk cache's name for symbol tables (what they hold is versioned by ``cache.FORMAT``).
CACHE_KIND = "symbols"
#: How far back a lookup walks for a symbol that covers the address (nested symbols).
_BACKTRACK = 16


class SymbolTable:
    """Sorted function symbols: ``starts[i]``, ``sizes[i]``, ``names[i]`` (file virtual addresses)."""

    def __init__(self, starts: List[int], sizes: List[int], names: List[str], sources: Sequence[str] = ()):
        self.starts = starts
        self.sizes = sizes
        self.names = names
        self.sources = tuple(sources)  # which files the symbols came from (for messages)
        self._by_name = None

    def __len__(self) -> int:
        return len(self.starts)

    def lookup(self, vaddr: int) -> Tuple[Optional[str], int, bool]:
        """(name, offset, exact): exact when the symbol's size covers ``vaddr``; otherwise the
        nearest preceding symbol (or None) with ``exact`` False."""
        i = bisect_right(self.starts, vaddr) - 1
        if i < 0:
            return None, 0, False
        for j in range(i, max(-1, i - _BACKTRACK), -1):
            start, size = self.starts[j], self.sizes[j]
            if size and start <= vaddr < start + size:
                return self.names[j], vaddr - start, True
        return self.names[i], vaddr - self.starts[i], False

    def address_of(self, name: str) -> Optional[Tuple[int, int]]:
        """(start, size) of the function called ``name`` (for ``disas FUNCTION``)."""
        if self._by_name is None:
            self._by_name = {}
            for start, size, n in zip(self.starts, self.sizes, self.names):
                self._by_name.setdefault(n, (start, size))
        return self._by_name.get(name)

    def aliases(self, vaddr: int) -> List[str]:
        """Every name of the symbol(s) starting exactly at ``vaddr`` (tests compare with gdb)."""
        return list(self._aliases.get(vaddr, ())) if hasattr(self, "_aliases") else []


def _rank(size: int, bind: int, symbol: str) -> tuple:
    """Preference among names at one address: sized over unsized, global over local,
    unversioned over versioned, fewer leading underscores."""
    return (0 if size else 1, 0 if bind == STB_GLOBAL else 1 if bind == STB_WEAK else 2,
            1 if "@" in symbol else 0, len(symbol) - len(symbol.lstrip("_")), symbol)


def _read_table(elf: ElfFile, name: str, out: dict) -> int:
    sec = elf.sections.get(name)
    if sec is None or sec.type == 8 or sec.entsize not in (0, _SYM.size):
        return 0
    if sec.link >= len(elf.section_list):
        return 0
    strsec = elf.section_list[sec.link]
    strings = elf.data[strsec.offset:strsec.offset + strsec.size]
    raw = elf.data[sec.offset:sec.offset + sec.size - sec.size % _SYM.size]
    exec_sections = {i for i, s in enumerate(elf.section_list) if s.flags & SHF_EXECINSTR}
    count = 0
    find = strings.find
    get = out.get
    # An entry is [rank, size, name, names, own size, bind]; the rank (a tuple) is built only
    # when a second name meets the address, which is rare apart from .dynsym repeating .symtab.
    for st_name, info, _other, shndx, value, size in _SYM.iter_unpack(raw):
        kind = info & 0xF
        if kind != STT_FUNC and kind != STT_IFUNC and not (kind == STT_NOTYPE and shndx in exec_sections):
            continue
        if shndx == 0 or not value or not st_name:
            continue
        symbol = strings[st_name:find(b"\0", st_name)].decode("utf-8", "replace")
        if not symbol or symbol.startswith(".L"):
            continue
        count += 1
        entry = get(value)
        if entry is None:
            out[value] = [None, size, symbol, {symbol}, size, info >> 4]
            continue
        if entry[0] is None:
            entry[0] = _rank(entry[4], entry[5], entry[2])
        entry[3].add(symbol)
        rank = _rank(size, info >> 4, symbol)
        if rank < entry[0]:
            entry[0], entry[2] = rank, symbol
        if size > entry[1]:
            entry[1] = size
    return count


def _add_plt(elf: ElfFile, out: dict) -> int:
    """``foo@plt`` for PLT entries (plt.py), where no real symbol starts at the entry."""
    from .plt import plt_symbols
    try:
        entries = plt_symbols(elf)
    except (struct.error, ValueError, IndexError):
        return 0     # a malformed PLT: its stubs stay unnamed
    count = 0
    for start, (symbol, size) in entries.items():
        if start not in out:
            out[start] = [(0, 0, 0, 0, symbol), size, symbol, {symbol}]
            count += 1
    return count


def debug_file_for(elf: ElfFile, build_id: str, roots: Optional[Sequence[str]] = None) -> Optional[str]:
    """A separate debug file with the same build-id, by build-id path or ``.gnu_debuglink``
    (``roots``: the debug directories, default ``debug_roots()``)."""
    if roots is None:
        roots = debug_roots()
    candidates = []
    if len(build_id) > 2:
        for root in roots:
            candidates.append(os.path.join(root, ".build-id", build_id[:2], build_id[2:] + ".debug"))
    link = elf.debuglink()
    if link:
        here = os.path.dirname(os.path.realpath(elf.path))
        candidates += [os.path.join(here, link[0]), os.path.join(here, ".debug", link[0])]
        candidates += [os.path.join(root + here, link[0]) for root in roots]
    for path in candidates:
        if not os.path.isfile(path) or os.path.realpath(path) == os.path.realpath(elf.path):
            continue
        try:
            debug = ElfFile(path)
        except ElfFormatError:
            continue
        try:
            if build_id and debug.build_id() == build_id:
                return path
        finally:
            debug.close()
    return None


def demangle(names: List[str]) -> List[str]:
    """C++ names through one ``c++filt`` call; unchanged when it is missing or fails."""
    wanted = [i for i, n in enumerate(names) if n.startswith("_Z")]
    if not wanted:
        return names
    import shutil       # here: with subprocess, they were a sixth of a warm ``dump --native``
    import subprocess
    tool = shutil.which("c++filt")
    if tool is None:
        return names
    try:
        result = subprocess.run([tool], input="\n".join(names[i] for i in wanted) + "\n",
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return names
    lines = result.stdout.split("\n")
    if result.returncode != 0 or len(lines) < len(wanted):
        return names
    out = list(names)
    for i, line in zip(wanted, lines):
        out[i] = line or names[i]
    return out


def load_symbols(elf: ElfFile, build_id: str, use_cache: bool = True) -> SymbolTable:
    """The function symbols of ``elf`` (and of its debug file), from the cache when possible.

    The cache key says whether a debug file was used, so a debug file
    installed after a first attach is read on the next one."""
    debug_path = debug_file_for(elf, build_id) if build_id else None
    key = build_id + ("-debug" if debug_path else "")
    if use_cache and build_id:
        cached = cache.load(CACHE_KIND, key)
        if cached is not None:
            try:
                starts, sizes, names, sources, aliases = cached
                table = SymbolTable(list(starts), list(sizes), list(names), sources)
                table._aliases = aliases
                return table
            except (TypeError, ValueError):
                pass
    found: dict = {}
    sources = []
    if debug_path:
        try:
            debug = ElfFile(debug_path)
            try:
                if _read_table(debug, ".symtab", found):
                    sources.append(debug_path)
            finally:
                debug.close()
        except ElfFormatError:
            pass
    if _read_table(elf, ".symtab", found):
        sources.append(elf.path + ":.symtab")
    if _read_table(elf, ".dynsym", found):
        sources.append(elf.path + ":.dynsym")
    if _add_plt(elf, found):
        sources.append(elf.path + ":plt")
    starts = sorted(found)
    sizes = [found[s][1] for s in starts]
    names = demangle([found[s][2] for s in starts])
    aliases = {s: tuple(sorted(found[s][3])) for s in starts if len(found[s][3]) > 1}
    table = SymbolTable(starts, sizes, names, sources)
    table._aliases = aliases
    if use_cache and build_id:
        cache.store(CACHE_KIND, key, (starts, sizes, names, tuple(sources), aliases))
    return table
