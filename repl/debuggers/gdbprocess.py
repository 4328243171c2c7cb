"""``GdbProcess``: the ``Process`` Protocol from gdb's Python API (live inferior or core).

Memory: ``Inferior.read_memory`` (gdb also serves a core's absent code and
read-only data from the binaries on disk).  Threads: ``Inferior.threads()``,
whose ``ptid[1]`` is the kernel thread id.  Registers: frame 0 of each
thread (``Frame.read_register``), including ``orig_rax`` (>= 0 inside a
system call) and ``fs_base``.  Mappings: ``info proc mappings`` (a live
process's /proc maps, read by gdb; for a core, the ``NT_FILE`` list) plus a
core's load segments for anonymous memory.  No debug symbols are needed.
"""
from __future__ import annotations

import os
import re

import gdb  # noqa: F401 - only this module and gdbcommands import gdb

from snapshot.process.base import DWARF_X86_64, MemoryMap

from .base import DebuggerProcess, core_psargs

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


_MAPPING = re.compile(r"^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s*([rwxsp-]{4})?\s*(.*)$")
_CORE_SECTION = re.compile(r"^\s*\[\s*\d+\]\s+(0x[0-9a-f]+)->(0x[0-9a-f]+)\s+at\s+0x[0-9a-f]+:\s+(load\S*)\s+(.*)$")
_REGISTERS = DWARF_X86_64 + ("fs_base", "gs_base", "orig_rax")


def _execute(command: str) -> str:
    try:
        return gdb.execute(command, to_string=True) or ""
    except gdb.error:
        return ""


def inferior_is_core(inferior=None) -> bool:
    """True when gdb's inferior is a core file (not a running process)."""
    inferior = inferior or gdb.selected_inferior()
    connection = getattr(inferior, "connection", None)
    if connection is not None and getattr(connection, "type", None):
        return connection.type == "core"
    return "core dump file" in _execute("info files").lower()


class GdbProcess(DebuggerProcess):
    debugger = "gdb"

    def __init__(self, inferior=None):
        self.inferior = inferior or gdb.selected_inferior()
        if not self.inferior.pid:
            from snapshot.errors import ProcessNotFoundError
            raise ProcessNotFoundError("gdb has no process or core loaded",
                                       "attach (gdb -p PID), run the program, or open a core (gdb EXE CORE)")
        super().__init__(self.inferior.pid, inferior_is_core(self.inferior))
        self._threads: Optional[List[Tuple[int, Optional[str]]]] = None
        self._objfiles: Optional[Dict[str, Tuple[str, str]]] = None

    # -- memory ---------------------------------------------------------------------
    def _read_raw(self, address: int, size: int) -> Optional[bytes]:
        try:
            return self.inferior.read_memory(address, size).tobytes()
        except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
            return None

    # -- address space ------------------------------------------------------------------
    def _read_maps(self) -> List[MemoryMap]:
        maps = []
        for line in _execute("info proc mappings").splitlines():
            match = _MAPPING.match(line)
            if match:
                start, end, offset, perms, path = match.groups()
                maps.append(MemoryMap(int(start, 16), int(end, 16), perms or "", int(offset, 16), path.strip()))
        if self.is_core:
            maps = self._with_core_segments(maps)
        return maps

    def _with_core_segments(self, files: List[MemoryMap]) -> List[MemoryMap]:
        """A core's ``NT_FILE`` list has no permissions and no anonymous memory: add both
        from the core's load segments (``maintenance info sections``)."""
        segments = []
        in_core = False
        for line in _execute("maintenance info sections -all-objects").splitlines():
            if line.startswith(("Core file:", "Exec file:", "Object file:")) or line.startswith("Core file"):
                in_core = line.startswith("Core file")
                continue
            match = _CORE_SECTION.match(line) if in_core else None
            if match:
                start, end, _, flags = match.groups()
                perms = "r" + ("-" if "READONLY" in flags else "w") + ("x" if "CODE" in flags else "-") + "p"
                segments.append((int(start, 16), int(end, 16), perms))
        result = []
        for m in files:
            perms = next((p for s, e, p in segments if s <= m.start < e), "r-xp")  # absent: code
            result.append(MemoryMap(m.start, m.end, perms, m.offset, m.path))
        for start, end, perms in segments:
            if not any(f.start < end and start < f.end for f in files):
                result.append(MemoryMap(start, end, perms, 0, ""))
        return result

    def _build_ids(self) -> Dict[str, Tuple[str, str]]:
        if self._objfiles is None:
            table: Dict[str, Tuple[str, str]] = {}
            for objfile in gdb.objfiles():
                try:
                    name = objfile.filename
                    build_id = objfile.build_id or ""
                    owner = getattr(objfile, "owner", None)
                except (gdb.error, RuntimeError):
                    continue
                if not name or owner is not None:      # separate debug files belong to another
                    continue
                for key in {name, os.path.realpath(name), getattr(objfile, "username", None) or name}:
                    table.setdefault(key, (build_id, name))
            self._objfiles = table
        return self._objfiles

    def local_path(self, path: str) -> str:
        table = self._build_ids()
        for key in (path, os.path.realpath(path) if os.path.exists(path) else None):
            if key in table and os.path.exists(table[key][1]):
                return table[key][1]
        if not os.path.exists(path):
            # a core opened with another sysroot: gdb found the file by name elsewhere
            base = os.path.basename(path)
            for key, (_, local) in table.items():
                if os.path.basename(key) == base and os.path.exists(local):
                    return local
        return super().local_path(path)

    # -- identity ----------------------------------------------------------------------------
    def executable(self) -> str:
        progspace = getattr(self.inferior, "progspace", None) or gdb.current_progspace()
        name = progspace.filename if progspace is not None else None
        return name or ""

    def command_line(self) -> List[str]:
        if self.is_core:
            match = re.search(r"core dump file:\s*`(.*)', file type", _execute("info files"), re.I)
            if not match:
                return []
            return core_argv(match.group(1)) or core_psargs(match.group(1))
        text = _execute("info proc cmdline")
        match = re.search(r"cmdline = '(.*)'\s*$", text, re.S)
        return [match.group(1)] if match else []

    def is_alive(self) -> bool:
        if self.is_core:
            return True
        try:
            return self.inferior.is_valid() and self.inferior.pid != 0 and bool(self.inferior.threads())
        except gdb.error:
            return False

    # -- threads ---------------------------------------------------------------------------------
    def _thread_list(self) -> List[Tuple[int, Optional[str]]]:
        if self._threads is None:
            threads = []
            for thread in sorted(self.inferior.threads(), key=lambda t: t.num):
                if thread.is_valid():
                    threads.append((thread.ptid[1] or thread.ptid[0], thread.name))
            self._threads = threads
        return list(self._threads)

    def _register_values(self, tid: int) -> Dict[str, Optional[int]]:
        thread = next((t for t in self.inferior.threads() if (t.ptid[1] or t.ptid[0]) == tid), None)
        if thread is None:
            raise ValueError("no thread %d in gdb's inferior" % tid)
        selected = gdb.selected_thread()
        try:
            frame = gdb.selected_frame() if selected is not None else None
        except gdb.error:
            frame = None
        values: Dict[str, Optional[int]] = {}
        try:
            thread.switch()
            newest = gdb.newest_frame()
            for name in _REGISTERS:
                try:
                    values[name] = int(newest.read_register(name)) & 0xFFFFFFFFFFFFFFFF
                except (gdb.error, ValueError):
                    values[name] = None
        finally:
            if selected is not None and selected.is_valid():
                selected.switch()
                if frame is not None and frame.is_valid():
                    frame.select()
        return values


def core_argv(path: str) -> List[str]:
    """argv as the core's initial stack holds it (what ``dump --core`` shows), [] if unreadable."""
    try:
        from snapshot.process.core import CoreProcess
        process = CoreProcess(path)
    except Exception:  # noqa: BLE001 - the psargs fallback is enough for a first line
        return []
    try:
        return process.command_line()
    except Exception:  # noqa: BLE001
        return []
    finally:
        process.close()
