"""``LiveProcess(pid)``: a running process, through process_vm_readv, ``/proc`` and ptrace.

The composition of this package's helpers behind the ``Process`` Protocol:
``memory`` (process_vm_readv, ``/proc/PID/mem``), ``procfs`` (every ``/proc``
parse), ``tasks`` (thread states, system calls, namespace ids), ``pause``
(ptrace seize/interrupt/detach with the tool's signals held) and ``ptrace``
(registers).  Checks that make an attach fail early with a true message (no
such pid, a kernel thread) happen in the constructor.
"""
from __future__ import annotations

import os

from ..errors import BinaryReadError, KernelThreadError, ProcessExitedError, ProcessNotFoundError
from .. import elf
from . import procfs
from .base import FILES, LIVE, PAUSABLE, REGISTERS, RUNNING_SYSCALLS, MappedFile, MemoryMap, OSThread, Registers
from .memory import ProcessMemory
from .pause import not_paused, paused
from .ptrace import RegistersUnavailableError, get_registers
from .tasks import TaskStates

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import BinaryIO, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple


def check_process(pid: int) -> None:
    """Raise the right error for a pid that cannot be inspected at all."""
    if pid <= 0 or pid > 0x3FFFFFFF:
        raise ProcessNotFoundError("no process with pid %d" % pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ProcessNotFoundError("no process with pid %d" % pid) from None
    except PermissionError:
        pass  # exists, owned by someone else: reading will tell whether we may
    except OverflowError:
        raise ProcessNotFoundError("no process with pid %d" % pid) from None
    if not procfs.exists(pid):
        raise ProcessNotFoundError("no process with pid %d" % pid)
    if procfs.is_kernel_thread(pid):
        raise KernelThreadError("process %d is a kernel thread (%s), not a Python process"
                                % (pid, procfs.comm(pid) or "?"))


class LiveProcess:
    """A live process.  Memory reads go straight to the kernel; maps and files are cached."""

    capabilities: FrozenSet[str] = frozenset({LIVE, PAUSABLE, REGISTERS, FILES, RUNNING_SYSCALLS})

    def __init__(self, pid: int):
        check_process(pid)
        # A thread id (/proc/TID exists, hidden from listings) names its whole process.
        group = procfs.thread_group(pid)
        #: the thread id asked for, when it was a thread of process ``pid`` rather than a process
        self.requested_thread: Optional[int] = pid if group and group != pid else None
        if self.requested_thread is not None:
            pid = group
            check_process(pid)
        self.pid = pid
        self.memory = ProcessMemory(pid)
        # The hot path calls these per read: bind them straight to the reader.
        self.read = self.memory.read
        self.read_many = self.memory.read_many
        # A sampler's pass: its reads are the next pass's one batched re-read (ProcessMemory).
        self.begin_pass = self.memory.begin_pass
        self.end_pass = self.memory.end_pass
        self.unchanged_outside = self.memory.unchanged_outside
        self.same_outside = self.memory.same_outside
        self.pass_token = self.memory.pass_token
        self.read_plan_again = self.memory.read_plan_again
        self.tasks = TaskStates(pid)
        self._maps: Optional[List[MemoryMap]] = None
        self._files: Optional[List[MappedFile]] = None
        self._stopped: frozenset = frozenset()

    # -- memory ---------------------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        return self.memory.read(address, size)

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        return self.memory.read_many(requests)

    @property
    def read_calls(self) -> int:
        """System calls made for memory so far (benchmarks)."""
        return self.memory.read_calls

    # -- address space ----------------------------------------------------------
    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        if self._maps is None or refresh:
            self._maps = procfs.maps(self.pid)
            self._files = None
        return self._maps

    def local_path(self, mapping: MemoryMap) -> str:
        """A path this process can open for ``mapping``'s file (through the target's root)."""
        return procfs.local_path(self.pid, mapping.path, mapping.start, mapping.end)

    def mapped_files(self, only: Optional[Callable[[str], bool]] = None) -> List[MappedFile]:
        """Each ELF file mapped at file offset 0, with its load bias and build-id."""
        if self._files is not None:
            return self._files if only is None else [f for f in self._files if only(f.path)]
        files = self._identify(only)
        if only is None:
            self._files = files
        return files

    def _identify(self, only: Optional[Callable[[str], bool]]) -> List[MappedFile]:
        files = []
        seen = set()
        for m in self.maps():
            if not m.path.startswith("/") or m.offset != 0 or m.path in seen:
                continue
            seen.add(m.path)
            if only is not None and not only(m.path):
                continue
            local = self.local_path(m)
            ident = elf.identify(local)
            if ident is None:
                continue
            end = max(x.end for x in self._maps if x.path == m.path)
            files.append(MappedFile(m.path, m.start, end, m.start - ident.first_load_vaddr,
                                    ident.build_id, local))
        return files

    def open_file(self, path: str) -> BinaryIO:
        local = procfs.local_path(self.pid, path)
        try:
            return open(local, "rb")
        except OSError as e:
            raise BinaryReadError("cannot open %s of process %d: %s" % (path, self.pid, e.strerror or e)) from None

    # -- identity -----------------------------------------------------------------
    def executable(self) -> str:
        return procfs.exe(self.pid)

    def command_line(self) -> List[str]:
        return procfs.cmdline(self.pid)

    def name(self) -> str:
        return procfs.comm(self.pid) or "?"

    def is_alive(self) -> bool:
        return not procfs.is_gone(self.pid)

    def exists(self) -> bool:
        """The pid is still there (a zombie too)."""
        return procfs.exists(self.pid)

    # -- threads ------------------------------------------------------------------------
    def threads(self) -> List[OSThread]:
        return [OSThread(tid, state) for tid, state in sorted(self.tasks.read().items())]

    def thread_ids(self) -> List[int]:
        """Thread ids only (cheaper than ``threads()``: no state read)."""
        return procfs.task_ids(self.pid)

    def thread_name(self, tid: int) -> Optional[str]:
        return procfs.comm(self.pid, tid)

    def tid_map(self) -> Dict[int, int]:
        """Thread ids as the target knows them -> ours; {} when they are the same (no namespace)."""
        return self.tasks.tid_map()

    def registers(self, tid: int) -> Registers:
        if tid not in self._stopped:
            raise RegistersUnavailableError("thread %d of process %d is not paused by us" % (tid, self.pid))
        return get_registers(tid)

    def in_syscall(self, tids: Sequence[int]) -> Dict[int, bool]:
        """Whether each paused thread was inside a system call: asked of ptrace for the threads
        we hold (one word each), of ``/proc/TID/syscall`` for the rest."""
        from .ptrace import syscall_number
        result: Dict[int, bool] = {}
        rest = []
        for tid in tids:
            number = syscall_number(tid) if tid in self._stopped else None
            if number is None:
                rest.append(tid)
            else:
                result[tid] = number >= 0
        if rest:
            result.update(self.tasks.in_syscall(rest))
        return result

    def syscalls(self, tids: Sequence[int]) -> Dict[int, Tuple[int, Tuple[int, ...]]]:
        """tid -> (number, arguments) of the system call each thread sits in, (-1, ()) if running:
        from the registers for the threads we hold stopped (this runs inside every pause),
        from ``/proc/TID/syscall`` for the rest."""
        if not self._stopped:
            return self.tasks.syscalls(tids)
        from .ptrace import syscall_of
        result = {}
        rest = []
        stopped = self._stopped
        for tid in tids:
            call = syscall_of(tid) if tid in stopped else None
            if call is None:
                rest.append(tid)
            else:
                result[tid] = call
        if rest:
            result.update(self.tasks.syscalls(rest))
        return result

    def paused(self):
        """A ``with`` block with every thread stopped (``pause.paused``); ``as``: the tids."""
        def remember(tids: List[int]) -> None:
            self._stopped = frozenset(tids)

        return paused(self.pid, remember)

    def not_paused(self):
        """The ``--nonblocking`` stand-in for ``paused()``."""
        return not_paused(self.pid)

    def check_exited(self) -> None:
        """Raise ``ProcessExitedError`` when the process is gone."""
        if not procfs.exists(self.pid):
            raise ProcessExitedError("process %d exited" % self.pid)

    def close(self) -> None:
        self.memory.close()
        self.tasks.close()
