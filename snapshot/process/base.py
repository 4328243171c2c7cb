"""The ``Process`` seam: everything the engine may know about a target, whatever it is.

Discovery, the walker, the native unwinder and ``Target`` see only this
Protocol, so a live pid, an ELF core file, a gdb or lldb inferior and a
snapshot file all get every feature.  Implementations:

* ``LiveProcess(pid)``  (``live.py``): process_vm_readv, ``/proc``, ptrace; the
  only code in the package that opens ``/proc``.
* ``ImageProcess``      (``image.py``): bytes held in memory (unit tests, snapshot files);
  ``RecordingProcess`` wraps another source and builds one from what it answered.
* ``CoreProcess``       (``core.py``): an ELF core plus the binaries on disk.
* ``GdbProcess`` / ``LldbProcess`` (``repl/debuggers/``): the debugger's API.

What a source cannot provide it says with ``capabilities`` and a typed error,
never by guessing.
"""
from __future__ import annotations

import struct
from layouts.records import dataclass

from ..hostcompat import FROZEN as _FROZEN

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import BinaryIO, Callable, ContextManager, Dict, FrozenSet, List, Optional, Protocol, Sequence, Tuple
else:
    Protocol = object  # ``Process`` is a structural type: nothing subclasses or instantiates it


#: Capability words a source may declare.
LIVE = "live"          # the process runs: it can be paused, sampled, followed
PAUSABLE = "pausable"  # ``paused()`` really stops it (live, blocking mode)
REGISTERS = "registers"  # ``registers(tid)`` works (native unwinding possible)
FILES = "files"        # mapped files can be opened (symbols, CFI, read-only data)
#: ``syscalls`` answers for running threads too, with no pause and no task listing, so a sampler
#: that does not pause asks only that (``Target._take``)
RUNNING_SYSCALLS = "running-syscalls"


@dataclass(**_FROZEN)
class MemoryMap:
    """One mapping of the address space (``/proc/PID/maps``, ``NT_FILE``, a debugger's list)."""

    start: int
    end: int
    perms: str
    offset: int
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start

    def __contains__(self, address: int) -> bool:
        return self.start <= address < self.end


@dataclass(**_FROZEN)
class MappedFile:
    """An ELF file mapped into the target: where it is and how to read it here.

    ``load_bias`` is what to add to the file's virtual addresses (0 for a
    non-PIE executable).  ``local_path`` is a path *this* process can open
    (live: through ``/proc/PID/root``; core: the path found on disk or on the
    search path; debugger: the objfile's file).
    """

    path: str
    start: int
    end: int
    load_bias: int
    build_id: str
    local_path: str


@dataclass(**_FROZEN)
class OSThread:
    """An OS thread of the target: its kernel id and scheduler state letter ('R', 'S', 't', '?')."""

    tid: int
    state: str = "?"


#: x86-64 ``user_regs_struct`` field order (PTRACE_GETREGS, NT_PRSTATUS ``pr_reg``).
USER_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
             "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
             "es", "fs", "gs")
USER_REGS_SIZE = 8 * len(USER_REGS)
_USER_REGS = struct.Struct("<%dQ" % len(USER_REGS))
#: DWARF register numbers of x86-64 (System V psABI): 0..15 general, 16 the return address (rip).
DWARF_X86_64 = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
                "r12", "r13", "r14", "r15", "rip")


@dataclass(**_FROZEN)
class Registers:
    """One thread's registers, indexed by DWARF number (what CFI rules speak), plus fs_base.

    ``dwarf[n]`` is None where the source does not know the register (a
    debugger's outer frame).  ``orig_rax`` >= 0 means the thread was inside
    a system call when it stopped (live, core and debugger alike).
    """

    arch: str
    dwarf: Tuple[Optional[int], ...]
    fs_base: int = 0
    orig_rax: int = -1

    @property
    def pc(self) -> int:
        return self.dwarf[16] or 0

    @property
    def sp(self) -> int:
        return self.dwarf[7] or 0

    @property
    def in_syscall(self) -> bool:
        return self.orig_rax >= 0

    @classmethod
    def from_user_regs(cls, raw: bytes) -> "Registers":
        """Decode a ``user_regs_struct`` (PTRACE_GETREGS buffer, NT_PRSTATUS ``pr_reg``)."""
        values = dict(zip(USER_REGS, _USER_REGS.unpack_from(raw, 0)))
        orig = values["orig_rax"]
        if orig >= 1 << 63:
            orig -= 1 << 64
        return cls("x86_64", tuple(values[name] for name in DWARF_X86_64), values["fs_base"], orig)

    @classmethod
    def from_names(cls, values: Dict[str, Optional[int]]) -> "Registers":
        """From a name -> value mapping (debugger APIs); missing names are unknown."""
        orig = values.get("orig_rax")
        if orig is not None and orig >= 1 << 63:
            orig -= 1 << 64
        return cls("x86_64", tuple(values.get(name) for name in DWARF_X86_64),
                   values.get("fs_base") or 0, -1 if orig is None else orig)


#: x86-64 number of ``futex``: its first argument (rdi) is the address of the word waited on.
SYSCALL_FUTEX = 202
#: x86-64 ``restart_syscall``: a timed wait (futex, nanosleep, poll) interrupted by a stop (our
#: previous pause) continues as this call, its registers still holding the first call's arguments.
SYSCALL_RESTART = 219
#: The number given for a thread known to be blocked in some system call that the source cannot name.
SYSCALL_UNKNOWN = 1 << 20
#: DWARF numbers of the System V system call argument registers: rdi, rsi, rdx, r10, r8, r9.
_SYSCALL_ARGS = (5, 4, 1, 10, 8, 9)


#: Bytes of a glibc system call site: ``mov $N, %eax`` (b8 + imm32) or, for call 0 (read),
#: ``xor %eax, %eax`` (31 c0), then ``syscall`` (0f 05).
SYSCALL_SITE = 7


def syscall_number_before(code: bytes) -> Optional[int]:
    """The call number of the system call site that ends ``code`` (the SYSCALL_SITE bytes
    before a stopped thread's pc), or None where the number was not loaded just before.

    This stands in for ``orig_rax`` where a source lacks it (lldb): the kernel stops a thread on
    its way out of a call as well as inside one, and rax then holds the result, not the number.
    """
    if len(code) != SYSCALL_SITE or code[5:] != b"\x0f\x05":
        return None
    if code[3:5] == b"\x31\xc0":      # xor %eax, %eax: read (0)
        return 0
    if code[0] == 0xB8:                 # mov $N, %eax
        return int.from_bytes(code[1:5], "little")
    return None


def syscall_of_registers(regs: "Registers") -> Tuple[int, Tuple[int, ...]]:
    """(number, arguments) of the system call a stopped thread sits in; (-1, ()) when running."""
    if regs.orig_rax < 0:
        return -1, ()
    return regs.orig_rax, tuple(regs.dwarf[n] or 0 for n in _SYSCALL_ARGS)


def syscalls_of(process, tids: Sequence[int]) -> Dict[int, Tuple[int, Tuple[int, ...]]]:
    """``process.syscalls(tids)`` where the source has it; otherwise ``in_syscall`` decides who is
    blocked (a debugger may know that without an ``orig_rax``: lldb reads it from the code), and
    the registers, where they carry ``orig_rax``, tell which call with which arguments."""
    get = getattr(process, "syscalls", None)
    if get is not None:
        return get(tids)
    result: Dict[int, Tuple[int, Tuple[int, ...]]] = {}
    blocked = process.in_syscall(tids)
    for tid in tids:
        args: Tuple[int, ...] = ()
        try:
            regs = process.registers(tid)
            call = syscall_of_registers(regs)
            # the argument registers survive the stop even where the call's number is lost
            # (lldb: no orig_rax, rax holds the restart code): kept for the GIL-wait rule
            args = tuple(regs.dwarf[n] or 0 for n in _SYSCALL_ARGS)
        except Exception:  # noqa: BLE001 - a source without registers: in_syscall alone
            call = None
        waiting = blocked.get(tid)
        if waiting is None:
            if call is not None:
                result[tid] = call
        elif not waiting:
            result[tid] = (-1, ())
        else:
            result[tid] = call if call is not None and call[0] >= 0 else (SYSCALL_UNKNOWN, args)
    return result


class Process(Protocol):
    """What the engine needs from a source of bytes, threads and registers."""

    #: The target's pid (a core's dumped pid; 0 for a synthetic image).
    pid: int
    #: Capability words (``LIVE``, ``PAUSABLE``, ``REGISTERS``, ``FILES``).
    capabilities: FrozenSet[str]

    # -- memory ---------------------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``address``, or raise ``MemoryReadError``."""

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Batched reads; an unreadable request gives ``None`` in its place."""

    # -- address space ----------------------------------------------------------
    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        """Every mapping, lowest address first (``refresh``: read again where the address space
        can change, a live process that loaded a module since; ``mapped_files`` follows)."""

    def mapped_files(self, only: Optional[Callable[[str], bool]] = None) -> List[MappedFile]:
        """ELF files mapped into the target, with load bias, build-id and a local path.

        ``only``: just the files whose target path it accepts.  Why: telling a file's identity
        means opening and parsing it (or, for a core, finding it on this machine), and
        discovery needs two of the thirty-odd files a process maps."""

    def open_file(self, path: str) -> BinaryIO:
        """Open a file the target maps (by the target's path), as the target sees it."""

    # -- identity -----------------------------------------------------------------
    def executable(self) -> str:
        """The target's main program path ('' when unknown)."""

    def command_line(self) -> List[str]:
        """argv as the target has it (empty when unknown)."""

    def name(self) -> str:
        """A short program name for messages ('?' when unknown)."""

    def is_alive(self) -> bool:
        """False once a live process has exited (always True for a core or image)."""

    # -- threads ------------------------------------------------------------------------
    def threads(self) -> List[OSThread]:
        """OS threads with their scheduler state (read before pausing for live processes)."""

    def thread_name(self, tid: int) -> Optional[str]:
        """The OS thread name (``comm``), if the source knows it."""

    def registers(self, tid: int) -> Registers:
        """Registers of a stopped thread; ``RegistersUnavailableError`` where the source has none."""

    def in_syscall(self, tids: Sequence[int]) -> Dict[int, bool]:
        """For stopped threads: was each inside a system call?  (Unknown tids are left out.)"""

    def syscalls(self, tids: Sequence[int]) -> Dict[int, Tuple[int, Tuple[int, ...]]]:
        """tid -> (system call number, its six arguments) of each thread blocked in one; -1 and ()
        for a thread that is running.  Optional: ``syscalls_of`` derives it from registers."""

    def tid_map(self) -> Dict[int, int]:
        """Thread ids as the target knows them (its pid namespace) -> the ids ``threads()`` uses;
        {} when they are the same.  Optional: callers treat a source without it as {}."""

    def paused(self) -> ContextManager[List[int]]:
        """Stop every thread for a consistent view; yields the stopped tids.  A no-op for a
        core, an image or a debugger inferior (already stopped)."""

    def close(self) -> None:
        """Release descriptors; the object is unusable afterwards."""
