"""What gdb and lldb inferiors share as a ``Process``: caching, batching, mapped files.

A debugger has stopped the inferior (or opened a core), so its memory does
not change while one of our commands runs: reads are served from a cache of
4 KiB pages filled through the debugger's API (each API call costs
microseconds of Python-to-C++ crossing; the walker makes thousands of small
reads).  A new ``DebuggerProcess`` is made whenever the inferior has run, so
the cache never outlives a stop.  Subclasses provide only the raw calls:
``_read_raw``, ``_read_maps``, ``_thread_list``, ``_register_values`` and
the identity methods.
"""
from __future__ import annotations

import contextlib
import os

from snapshot import elf
from snapshot.errors import MemoryReadError
from snapshot.process.base import FILES, REGISTERS, MappedFile, MemoryMap, OSThread, Registers

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import BinaryIO, Callable, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple


PAGE = 4096
#: Reads at least this large bypass the page cache (a data-stack chunk, a big string).
DIRECT = 16 * PAGE
#: Pages kept (64 MiB): bounded, because remote sizes are untrusted.
MAX_PAGES = 16384
#: Largest single read accepted from the engine.
MAX_READ = 64 << 20


def elf_layout(path: str) -> Optional[Tuple[int, int]]:
    """(e_type, first PT_LOAD vaddr rounded to a page) of a 64-bit ELF file, or None."""
    found = elf.identify(path)
    return (found.type, found.first_load_vaddr) if found is not None else None


def core_psargs(path: str) -> List[str]:
    """The command line an ELF core recorded (``NT_PRPSINFO.pr_psargs``: argv joined by
    spaces, cut at 80 bytes), as one item; empty when unreadable.  Read note by note, so a
    core too damaged for ``CoreFile`` still names its program."""
    from snapshot.process.corefile import NT_PRPSINFO, PRPSINFO_PSARGS
    try:
        with open(path, "rb") as fh:
            read = elf.file_reader(fh)
            for seg in elf.segments(read, elf.header(read)):
                if seg.type != elf.PT_NOTE or seg.filesz > 64 << 20:
                    continue
                try:
                    for note in elf.notes(read(seg.offset, seg.filesz)):
                        if note.name == b"CORE" and note.type == NT_PRPSINFO and len(note.desc) >= PRPSINFO_PSARGS + 80:
                            text = note.desc[PRPSINFO_PSARGS:PRPSINFO_PSARGS + 80].split(b"\0", 1)[0]
                            return [text.decode("utf-8", "replace").rstrip()] if text else []
                except elf.ElfFormatError:
                    continue
    except (OSError, elf.ElfFormatError):
        pass
    return []


class DebuggerProcess:
    """The ``Process`` Protocol over a debugger's API (subclasses: gdb, lldb)."""

    capabilities: FrozenSet[str] = frozenset({REGISTERS, FILES})
    #: Which debugger, for messages.
    debugger = "?"

    def __init__(self, pid: int, is_core: bool):
        self.pid = pid
        self.is_core = is_core
        self._pages: Dict[int, Optional[bytes]] = {}
        self._maps: Optional[List[MemoryMap]] = None
        self._files: Optional[List[MappedFile]] = None
        self._registers: Dict[int, Registers] = {}
        self.read_calls = 0

    # -- what subclasses provide ----------------------------------------------------
    def _read_raw(self, address: int, size: int) -> Optional[bytes]:
        raise NotImplementedError

    def _read_maps(self) -> List[MemoryMap]:
        raise NotImplementedError

    def _thread_list(self) -> List[Tuple[int, Optional[str]]]:
        """(kernel tid, OS thread name or None) of every thread, in the debugger's order."""
        raise NotImplementedError

    def _register_values(self, tid: int) -> Dict[str, Optional[int]]:
        """Name -> value of the innermost frame's registers of thread ``tid``."""
        raise NotImplementedError

    def _build_ids(self) -> Dict[str, Tuple[str, str]]:
        """Target path -> (build-id hex, local path) of the objfiles the debugger loaded."""
        return {}

    def executable(self) -> str:
        raise NotImplementedError

    def command_line(self) -> List[str]:
        return []

    def is_alive(self) -> bool:
        return True

    # -- memory -------------------------------------------------------------------
    def _raw(self, address: int, size: int) -> Optional[bytes]:
        self.read_calls += 1
        try:
            data = self._read_raw(address, size)
        except Exception:  # noqa: BLE001 - any debugger error is "unreadable"
            return None
        return data if data is not None and len(data) == size else None

    def _page(self, number: int) -> Optional[bytes]:
        if number in self._pages:
            return self._pages[number]
        if len(self._pages) >= MAX_PAGES:
            self._pages.clear()
        data = self._raw(number * PAGE, PAGE)
        self._pages[number] = data
        return data

    def read(self, address: int, size: int) -> bytes:
        if size <= 0:
            return b""
        if address < 0 or size > MAX_READ or address + size > 1 << 64:
            raise MemoryReadError(address, size, "out of range")
        if size >= DIRECT:
            data = self._raw(address, size)
            if data is None:
                raise MemoryReadError(address, size, "not readable in the %s inferior" % self.debugger)
            return data
        first, last = address // PAGE, (address + size - 1) // PAGE
        parts = []
        for number in range(first, last + 1):
            page = self._page(number)
            if page is None:
                # a page the debugger cannot read whole (a core segment that ends
                # inside it): ask for exactly the requested bytes instead
                data = self._raw(address, size)
                if data is None:
                    raise MemoryReadError(address, size, "not readable in the %s inferior" % self.debugger)
                return data
            parts.append(page)
        blob = parts[0] if len(parts) == 1 else b"".join(parts)
        offset = address - first * PAGE
        return blob[offset:offset + size]

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        result: List[Optional[bytes]] = []
        for address, size in requests:
            try:
                result.append(self.read(address, size))
            except MemoryReadError:
                result.append(None)
        return result

    # -- address space ------------------------------------------------------------------
    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        if self._maps is None:  # a stopped inferior: its mappings do not change under us
            self._maps = sorted(self._read_maps(), key=lambda m: m.start)
        return list(self._maps)

    def mapped_files(self, only: Optional[Callable[[str], bool]] = None) -> List[MappedFile]:
        if self._files is None:
            self._files = self._mapped_files()
        return [f for f in self._files if only is None or only(f.path)]

    def _mapped_files(self) -> List[MappedFile]:
        spans: Dict[str, List[MemoryMap]] = {}
        for m in self.maps():
            if m.path.startswith("/"):
                spans.setdefault(m.path, []).append(m)
        known = self._build_ids()
        files = []
        for path, maps in spans.items():
            build_id, local = known.get(path, ("", ""))
            local = local if local and os.path.exists(local) else self.local_path(path)
            found = elf.identify(local)
            if found is None:
                continue  # not an ELF file (locale archives, fonts...)
            first = min(maps, key=lambda m: m.start)
            bias = 0 if found.type == elf.ET_EXEC else first.start - first.offset - found.first_load_vaddr
            build_id = build_id or found.build_id
            files.append(MappedFile(path, first.start, max(m.end for m in maps), bias, build_id, local))
        return files

    def local_path(self, path: str) -> str:
        """A path this process can open for a file the inferior maps."""
        for target_path, (_, local) in self._build_ids().items():
            if target_path == path and local and os.path.exists(local):
                return local
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        return path

    def open_file(self, path: str) -> BinaryIO:
        return open(self.local_path(path), "rb")

    def name(self) -> str:
        exe = self.executable()
        return os.path.basename(exe) if exe else "?"

    # -- threads ----------------------------------------------------------------------------
    def threads(self) -> List[OSThread]:
        # every thread is stopped by the debugger ('t'); a core's are stopped for good
        return [OSThread(tid, "t") for tid, _ in self._thread_list()]

    def thread_name(self, tid: int) -> Optional[str]:
        for known, name in self._thread_list():
            if known == tid:
                return name
        return None

    def registers(self, tid: int) -> Registers:
        registers = self._registers.get(tid)
        if registers is None:
            from snapshot.process.ptrace import RegistersUnavailableError
            try:
                values = self._register_values(tid)
            except Exception as e:  # noqa: BLE001 - the debugger's own error, made typed
                raise RegistersUnavailableError("%s could not read the registers of thread %d: %s"
                                                % (self.debugger, tid, e),
                                                "select a thread the %s inferior still has" % self.debugger) from None
            registers = self._registers[tid] = Registers.from_names(values)
        return registers

    def in_syscall(self, tids: Sequence[int]) -> Dict[int, bool]:
        """A thread stopped inside a system call has ``orig_rax`` >= 0 (its number)."""
        result = {}
        for tid in tids:
            try:
                registers = self.registers(tid)
            except Exception:  # noqa: BLE001 - unknown is left out
                continue
            waiting = self._syscall_hint(tid, registers)
            if waiting is not None:
                result[tid] = waiting
        return result

    def _syscall_hint(self, tid: int, registers: Registers) -> Optional[bool]:
        return registers.in_syscall

    @contextlib.contextmanager
    def paused(self) -> Iterator[List[int]]:
        """The debugger stopped every thread already: never ptrace it ourselves."""
        yield [tid for tid, _ in self._thread_list()]

    def close(self) -> None:
        self._pages.clear()
