"""``LldbProcess``: the ``Process`` Protocol from lldb's SB API (live process or core).

Memory: ``SBProcess.ReadMemory``; where a core leaves bytes out (code and
read-only data of the binaries), the section contents of the module that
covers the address (``SBSection.GetSectionData``).  Threads:
``SBThread.GetThreadID`` (the kernel tid).  Registers: the general purpose
set of frame 0.  lldb 16 exposes neither ``orig_rax`` nor ``fs_base`` on
Linux, so "inside a system call" is read from the code: a thread stopped in
one sits right after a ``syscall`` instruction, and glibc's ``mov $N, %eax``
before it names the call.  Mappings: each module's
``PT_LOAD`` segments (path, file offset, permissions), plus the memory
regions no module covers (heap, stacks, anonymous memory).
"""
from __future__ import annotations

import re

import lldb  # noqa: F401 - only this module and lldbcommands import lldb

from snapshot.process.base import DWARF_X86_64, SYSCALL_SITE, MemoryMap, Registers, syscall_number_before

from .base import DebuggerProcess

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


_SYSCALL = b"\x0f\x05"
_WANTED = set(DWARF_X86_64) | {"fs_base", "gs_base", "orig_rax"}


def _perms(bits: int) -> str:
    # lldb: ePermissionsWritable = 1, Readable = 2, Executable = 4
    return ("r" if bits & 2 else "-") + ("w" if bits & 1 else "-") + ("x" if bits & 4 else "-") + "p"


class LldbProcess(DebuggerProcess):
    debugger = "lldb"

    def __init__(self, target):
        self.target = target
        self.process = target.GetProcess()
        if not self.process.IsValid() or not self.process.GetProcessID():
            from snapshot.errors import ProcessNotFoundError
            raise ProcessNotFoundError("lldb has no process or core loaded",
                                       "attach (lldb -p PID) or open a core (lldb -c CORE EXE)")
        plugin = self.process.GetPluginName() or ""
        super().__init__(self.process.GetProcessID(), "core" in plugin.lower())
        self._threads: Optional[List[Tuple[int, Optional[str]]]] = None
        self._with_orig_rax = set()

    # -- memory ---------------------------------------------------------------------
    def _read_raw(self, address: int, size: int) -> Optional[bytes]:
        error = lldb.SBError()
        data = self.process.ReadMemory(address, size, error)
        if error.Success() and data is not None and len(data) == size:
            return bytes(data)
        return self._read_file(address, size)

    def _read_file(self, address: int, size: int) -> Optional[bytes]:
        """Bytes a core does not hold, from the module section that covers them."""
        where = self.target.ResolveLoadAddress(address)
        section = where.GetSection()
        if not section.IsValid():
            return None
        offset = address - section.GetLoadAddress(self.target)
        if offset < 0 or offset + size > section.GetFileByteSize():
            return None
        data = section.GetSectionData(offset, size)
        error = lldb.SBError()
        raw = data.ReadRawData(error, 0, size) if data.IsValid() else None
        return bytes(raw) if error.Success() and raw is not None and len(raw) == size else None

    # -- address space ------------------------------------------------------------------
    def _read_maps(self) -> List[MemoryMap]:
        maps: List[MemoryMap] = []
        invalid = lldb.LLDB_INVALID_ADDRESS
        for module in self.target.module_iter():
            path = module.GetFileSpec().fullpath or ""
            if not path.startswith("/"):
                continue   # [vdso]
            for index in range(module.GetNumSections()):
                section = module.GetSectionAtIndex(index)
                if not (section.GetName() or "").startswith("PT_LOAD"):
                    continue
                load = section.GetLoadAddress(self.target)
                if load == invalid or not section.GetByteSize():
                    continue
                start = load & ~0xFFF
                end = (load + section.GetByteSize() + 0xFFF) & ~0xFFF
                offset = section.GetFileOffset() & ~0xFFF
                maps.append(MemoryMap(start, end, _perms(section.GetPermissions()), offset, path))
        regions = self.process.GetMemoryRegions()
        info = lldb.SBMemoryRegionInfo()
        for index in range(regions.GetSize()):
            if not regions.GetMemoryRegionAtIndex(index, info) or not info.IsMapped():
                continue
            start, end = info.GetRegionBase(), info.GetRegionEnd()
            if any(m.start < end and start < m.end for m in maps if m.path):
                continue
            bits = (2 if info.IsReadable() else 0) | (1 if info.IsWritable() else 0) | (4 if info.IsExecutable() else 0)
            name = info.GetName() or ""
            maps.append(MemoryMap(start, end, _perms(bits), 0, name if not name.startswith("/") else name))
        return maps

    def _build_ids(self) -> Dict[str, Tuple[str, str]]:
        table = {}
        for module in self.target.module_iter():
            path = module.GetFileSpec().fullpath or ""
            uuid = (module.GetUUIDString() or "").replace("-", "").lower()
            if path.startswith("/"):
                table[path] = (uuid, path)
        return table

    # -- identity ----------------------------------------------------------------------------
    def executable(self) -> str:
        return self.target.GetExecutable().fullpath or ""

    def command_line(self) -> List[str]:
        if self.is_core:
            return []
        try:   # lldb -p on this machine: argv as the kernel has it (lldb shows argv[0] resolved)
            from snapshot.process import procfs
            argv = procfs.cmdline(self.pid)
        except Exception:  # noqa: BLE001 - fall back to lldb's own view
            argv = []
        if argv:
            return argv
        result = lldb.SBCommandReturnObject()
        self.target.GetDebugger().GetCommandInterpreter().HandleCommand(
            "platform process info %d" % self.pid, result)
        text = result.GetOutput() or ""
        exe = re.search(r"^\s*file = (.*)$", text, re.M)
        args = re.findall(r"^\s*arg\[\d+\] = (.*)$", text, re.M)
        return ([exe.group(1)] if exe else []) + args if exe or args else []

    def is_alive(self) -> bool:
        if self.is_core:
            return True
        return self.process.IsValid() and self.process.GetState() not in (
            lldb.eStateExited, lldb.eStateDetached, lldb.eStateInvalid, lldb.eStateUnloaded)

    # -- threads ---------------------------------------------------------------------------------
    def _thread_list(self) -> List[Tuple[int, Optional[str]]]:
        if self._threads is None:
            self._threads = [(thread.GetThreadID(), thread.GetName()) for thread in self.process]
        return list(self._threads)

    def _register_values(self, tid: int) -> Dict[str, Optional[int]]:
        thread = self.process.GetThreadByID(tid)
        if not thread.IsValid():
            raise ValueError("no thread %d in lldb's process" % tid)
        frame = thread.GetFrameAtIndex(0)
        values: Dict[str, Optional[int]] = {}
        for register_set in frame.GetRegisters():
            for register in register_set:
                name = register.GetName()
                if name in _WANTED and name not in values:
                    values[name] = register.GetValueAsUnsigned()
        if values.get("orig_rax") is None:
            values["orig_rax"] = self._number_from_code(values.get("rip"))
        if values.get("orig_rax") is not None:
            self._with_orig_rax.add(tid)
        return values

    def _number_from_code(self, pc: Optional[int]) -> Optional[int]:
        """The system call a thread stopped right after its ``syscall`` instruction made, from
        the ``mov $N, %eax`` before it: what ``orig_rax`` holds whether the call was interrupted
        or had just returned (the kernel stops a thread on its way out too).  None elsewhere."""
        if not pc or pc < SYSCALL_SITE:
            return None
        try:
            return syscall_number_before(self.read(pc - SYSCALL_SITE, SYSCALL_SITE))
        except Exception:  # noqa: BLE001 - unreadable code: unknown
            return None

    def _syscall_hint(self, tid: int, registers: Registers) -> Optional[bool]:
        if tid in self._with_orig_rax:
            return registers.in_syscall
        pc = registers.pc
        if not pc:
            return None
        try:
            # inside the call or stopped on its way out (rax holds a restart code or the result):
            # orig_rax is the call's number either way, so both count as inside it
            return self.read(pc - 2, 2) == _SYSCALL
        except Exception:  # noqa: BLE001 - unreadable code: unknown
            return None
