"""What the kernel says about a live target's threads, read cheaply and often.

Run state comes from ``/proc/PID/task/TID/stat`` and must be read *before*
the threads are paused (a paused thread reads as 't'); while paused,
``syscall`` tells whether each thread was blocked in a system call.  A
sampler asks up to a thousand times a second, and opening a stat file costs
more than reading it, so each thread's files stay open.

Inside a PID namespace (a container) the target knows its threads by the
namespace's ids while ``/proc`` here lists ours; ``NSpid`` in each thread's
``status`` gives both, so ids the target stored can be mapped to ours.
"""
from __future__ import annotations

import os

from . import procfs

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Iterable, Tuple


class TaskStates:
    """Per-thread ``stat`` and ``syscall`` of one process, through kept-open descriptors."""

    #: At most this many descriptors are kept open (a 1,000-thread target under a low ``ulimit -n``).
    MAX_OPEN = 256

    def __init__(self, pid: int):
        self.pid = pid
        self.max_open = _descriptor_budget(self.MAX_OPEN)
        self._fds: Dict[Tuple[int, str], int] = {}
        self._same_ns = None
        self._ns_map: Dict[int, int] = {}  # target's tid -> our tid

    def _read_all(self, tids: Iterable[int], name: str, size: int) -> Dict[int, bytes]:
        result = {}
        for tid in tids:
            key = (tid, name)
            fd = self._fds.get(key)
            if fd is None:
                try:
                    fd = os.open(procfs.task_file(self.pid, tid, name), os.O_RDONLY)
                except OSError:
                    continue
                if len(self._fds) < self.max_open:
                    self._fds[key] = fd
                else:
                    try:
                        result[tid] = os.pread(fd, size, 0)
                    except OSError:
                        pass
                    os.close(fd)
                    continue
            try:
                result[tid] = os.pread(fd, size, 0)
            except OSError:
                os.close(self._fds.pop(key))
        return result

    def _forget_gone(self, alive) -> None:
        for key in [k for k in self._fds if k[0] not in alive]:
            os.close(self._fds.pop(key))

    def read(self) -> Dict[int, str]:
        """tid -> scheduler state letter, for threads that are not paused."""
        tids = procfs.task_ids(self.pid)
        self._forget_gone(set(tids))
        states = {}
        for tid, data in self._read_all(tids, "stat", 512).items():
            state = procfs.state_from_stat(data)
            if state:
                states[tid] = state
        return states

    def in_syscall(self, tids: Iterable[int]) -> Dict[int, bool]:
        """For paused threads: was each one inside a system call when stopped?

        A thread stopped by PTRACE_INTERRUPT while blocked (futex, sleep,
        poll...) reports that call's number; one stopped while running Python
        code reports -1.  Unlike the run state read before pausing, this is
        not disturbed by our own previous pause having woken the thread.
        """
        result = {}
        for tid, data in self._read_all(tids, "syscall", 128).items():
            head = data.split(b" ", 1)[0].strip()
            if head and head != b"running":
                try:
                    result[tid] = int(head) >= 0
                except ValueError:
                    pass
        return result

    def syscalls(self, tids: Iterable[int]) -> Dict[int, Tuple[int, Tuple[int, ...]]]:
        """tid -> (number, six arguments) of the system call each thread is blocked in; (-1, ())
        for one that runs.  Works paused or not: a sleeping thread reports its call either way."""
        result = {}
        for tid, data in self._read_all(tids, "syscall", 256).items():
            parsed = procfs.parse_syscall(data)
            if parsed is not None:
                result[tid] = parsed
        return result

    def tid_map(self) -> Dict[int, int]:
        """The target's own thread ids -> ours; {} when it shares our pid namespace."""
        if self._same_ns is None:
            self._same_ns = procfs.same_pid_namespace(self.pid)
        if self._same_ns:
            return {}
        tids = procfs.task_ids(self.pid)
        known = set(self._ns_map.values())
        if set(tids) != known:
            fresh = {}
            for tid in tids:
                nspids = procfs.ns_tids(self.pid, tid)
                if nspids:
                    fresh[nspids[-1]] = tid
            self._ns_map = fresh
        return self._ns_map

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _descriptor_budget(cap: int) -> int:
    """Kept-open descriptors allowed: a quarter of the soft limit, at most ``cap``."""
    # sysconf gives the soft RLIMIT_NOFILE (glibc), -1 for unlimited, without ``resource``'s import
    try:
        soft = os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return min(cap, 16)
    return cap if soft < 0 else max(0, min(cap, soft // 4))
