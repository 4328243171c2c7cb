"""Which file on this machine stands for each file a core had mapped, checked by build-id.

A core leaves out what can be read again from the files (code, read-only
data), so its reader must find those files: by the recorded path, under
``search_path`` (by path suffix and by basename) and at ``executable`` for
the main program.  A candidate is accepted only if its build-id equals the
one in the core's dumped first page of that mapping: a different binary
would give wrong stacks, so it is a typed error naming both build-ids
instead.  A missing file is an error only when something needs its bytes.
"""
from __future__ import annotations

import os

from layouts.records import NamedRow

from .. import elf
from ..errors import BinaryReadError, MemoryReadError, SnapshotError
from .corefile import CoreFile, FileEntry

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Sequence, Tuple


_DELETED = " (deleted)"
_SEARCH_HINT = "give the directory holding a copy with --lib-search-path DIR (or the program with --executable PATH)"


class BinaryNotFoundError(MemoryReadError, BinaryReadError):
    """A file the core needs (code, read-only data, symbols) is not on this machine.

    A ``MemoryReadError`` where a read needs the file's bytes, a
    ``BinaryReadError`` where the file itself is asked for (``open_file``).
    """

    exit_code = 9
    hint = _SEARCH_HINT

    def __init__(self, message: str, path: str, address: int = 0, size: int = 0):
        SnapshotError.__init__(self, message)
        self.path = path
        self.address = address
        self.size = size


class BuildIdMismatchError(BinaryNotFoundError):
    """The file found for a mapping is a different build than the one the process had mapped."""

    hint = ("the binary changed since the core was written (upgraded or rebuilt): give the exact build with "
            "--lib-search-path DIR (or --executable PATH)")


class Resolved(NamedRow):
    local_path: str
    error: Optional[BinaryNotFoundError]
    build_id: str          # what the core says (or, when it has no header page, the file's)
    elf_type: int          # 0 when not an ELF file
    first_vaddr: int


class BinaryFinder:
    """Resolves (and remembers) the local file for each path the core maps."""

    def __init__(self, core: CoreFile, search_path: Sequence[str] = (), executable: Optional[str] = None):
        self.core = core
        self.search_path = tuple(p for p in search_path if p)
        self.executable_override = executable
        self._resolved: Dict[str, Resolved] = {}

    def _first_entry(self, path: str) -> Optional[FileEntry]:
        for entry in self.core.by_path.get(path, ()):
            if entry.offset == 0:
                return entry
        return None

    def candidates(self, path: str) -> List[str]:
        clean = path[:-len(_DELETED)] if path.endswith(_DELETED) else path
        found: List[str] = []
        if self.executable_override and path == self.core.executable_path:
            found.append(self.executable_override)
        parts = [p for p in clean.split("/") if p]
        for directory in self.search_path:
            for i in range(len(parts)):
                found.append(os.path.join(directory, *parts[i:]))
        found.append(clean)
        return list(dict.fromkeys(found))

    def resolve(self, path: str) -> Resolved:
        """Which local file stands for ``path``: the first candidate whose build-id matches."""
        cached = self._resolved.get(path)
        if cached is not None:
            return cached
        entry = self._first_entry(path)
        page = self.core.header_bytes(entry) if entry is not None else b""
        expected, elf_type, first_vaddr = "", 0, 0
        if elf.is_elf(page):
            expected, elf_type, first_vaddr = _identity(elf.bytes_reader(page), len(page))
        mismatched: List[Tuple[str, str]] = []
        result = None
        for candidate in self.candidates(path):
            if not os.path.isfile(candidate):
                continue
            if not elf.is_elf(page):
                # The core does not say what was mapped here (no dumped header page, or not an
                # ELF file): nothing to check the file against.
                found = elf.identify(candidate)
                result = Resolved(candidate, None, found.build_id, found.type, found.first_load_vaddr) \
                    if found is not None else Resolved(candidate, None, "", 0, 0)
                break
            try:
                _, actual = elf.file_facts(candidate)
            except (OSError, elf.ElfFormatError):
                actual = "none (not an ELF file)"
            if not expected or actual == expected:
                result = Resolved(candidate, None, expected or actual, elf_type, first_vaddr)
                break
            mismatched.append((candidate, actual))
        if result is None:
            if mismatched:
                local, actual = mismatched[0]
                error: BinaryNotFoundError = BuildIdMismatchError(
                    "%s has build-id %s, but the process had %s with build-id %s" % (local, actual or "none",
                                                                                    path, expected), path)
            else:
                where = ", ".join(self.search_path) if self.search_path else "no --lib-search-path given"
                error = BinaryNotFoundError("%s (mapped in the core) is not on this machine (searched: %s)"
                                            % (path, where), path)
            result = Resolved("", error, expected, elf_type, first_vaddr)
        self._resolved[path] = result
        return result


def _identity(read, limit: Optional[int]) -> Tuple[str, int, int]:
    """(build-id, e_type, first PT_LOAD page vaddr) of an ELF image; e_type 0 if it is none."""
    try:
        found = elf.identity(read, limit)
    except elf.ElfFormatError:
        return "", 0, 0
    return found.build_id, found.type, found.first_load_vaddr
