"""What the operating system says about a target's threads.

Run state comes from ``/proc/PID/task/TID/stat`` and must be read *before*
the threads are paused (a paused thread reads as 't').  Before 3.11 CPython
does not store a thread's OS id; it is recovered from glibc's ``struct
pthread`` (``pthread_t`` is its address), at an offset found by probing
for the known thread ids rather than assumed.
"""
from __future__ import annotations

import os
import struct
from typing import Dict, Iterable, List, Optional, Tuple

from .memory import MemoryReader

PTHREAD_PROBE = 2048
#: glibc x86-64 keeps ``tid`` here; tried first, but always verified.
LIKELY_TID_OFFSETS = (0x2D0, 0xD0)

def task_ids(pid: int) -> List[int]:
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


def task_states(pid: int, tids: Optional[Iterable[int]] = None) -> Dict[int, str]:
    """tid -> one-letter scheduler state ('R' running, 'S' sleeping, ...)."""
    states = {}
    for tid in (tids if tids is not None else task_ids(pid)):
        try:
            with open("/proc/%d/task/%d/stat" % (pid, tid), "rb") as f:
                data = f.read()
        except OSError:
            continue
        end = data.rfind(b")")
        if end > 0 and end + 2 < len(data):
            states[tid] = chr(data[end + 2])
    return states


class TaskStates:
    """``task_states`` for repeated use: each thread's stat file stays open.

    Opening /proc/PID/task/TID/stat costs more than reading it, and a sampler
    reads every thread's state up to a thousand times a second.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self._fds: Dict[Tuple[int, str], int] = {}

    def _read_all(self, tids: Iterable[int], name: str, size: int) -> Dict[int, bytes]:
        result = {}
        for tid in tids:
            key = (tid, name)
            fd = self._fds.get(key)
            if fd is None:
                try:
                    fd = os.open("/proc/%d/task/%d/%s" % (self.pid, tid, name), os.O_RDONLY)
                except OSError:
                    continue
                self._fds[key] = fd
            try:
                result[tid] = os.pread(fd, size, 0)
            except OSError:
                os.close(self._fds.pop(key))
        return result

    def read(self) -> Dict[int, str]:
        """tid -> scheduler state letter, for threads that are not paused."""
        tids = task_ids(self.pid)
        alive = set(tids)
        for key in [k for k in self._fds if k[0] not in alive]:
            os.close(self._fds.pop(key))
        states = {}
        for tid, data in self._read_all(tids, "stat", 512).items():
            end = data.rfind(b")")
            if end > 0 and end + 2 < len(data):
                states[tid] = chr(data[end + 2])
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

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def task_name(pid: int, tid: int) -> Optional[str]:
    try:
        with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


class PthreadTidFinder:
    """Maps pthread_t values to OS thread ids by reading glibc's struct pthread."""

    def __init__(self, memory: MemoryReader, pid: int):
        self.memory = memory
        self.pid = pid
        self.offset: Optional[int] = None

    def native_ids(self, thread_ids: List[int]) -> Dict[int, int]:
        tids = set(task_ids(self.pid))
        if not thread_ids or not tids:
            return {}
        blocks = self.memory.read_many([(t, PTHREAD_PROBE) for t in thread_ids])
        if self.offset is None or not self._consistent(self.offset, blocks, tids):
            self.offset = self._probe(blocks, tids)
        if self.offset is None:
            return {}
        result = {}
        for thread_id, block in zip(thread_ids, blocks):
            if block is not None:
                value = struct.unpack_from("<i", block, self.offset)[0]
                if value in tids:
                    result[thread_id] = value
        return result

    def _consistent(self, offset: int, blocks, tids) -> bool:
        values = [struct.unpack_from("<i", b, offset)[0] for b in blocks if b is not None]
        return bool(values) and all(v in tids for v in values) and len(set(values)) == len(values)

    def _probe(self, blocks, tids) -> Optional[int]:
        candidates = list(LIKELY_TID_OFFSETS) + [o for o in range(0, PTHREAD_PROBE - 4, 4)
                                                  if o not in LIKELY_TID_OFFSETS]
        for offset in candidates:
            if self._consistent(offset, blocks, tids):
                return offset
        return None
