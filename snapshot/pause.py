"""Stopping every thread of a target for one consistent read, and always resuming it.

``paused(pid)`` is a context manager: on entry each task in /proc/PID/task is
PTRACE_SEIZEd and PTRACE_INTERRUPTed (seize does not send SIGSTOP, so job
control and the target's own signal handling are untouched); on exit every
task is detached, whatever happened in between.  If this process is killed
outright, the kernel detaches its tracees and they run on: with seize there is
no pending SIGSTOP to leave behind.  All ptrace calls of one pause must come
from the same OS thread, which a ``with`` block guarantees.
"""
from __future__ import annotations

import ctypes
import errno
import os
import signal
from contextlib import contextmanager
from typing import Dict, Iterator, List

from .errors import PermissionDeniedError, ProcessExitedError

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_EVENT_STOP = 128
WALL = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_ptrace.restype = ctypes.c_long

#: Attach rounds: threads started while we attach are picked up by a new round.
MAX_ROUNDS = 16


def list_tasks(pid: int) -> List[int]:
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except FileNotFoundError:
        raise ProcessExitedError("process %d exited" % pid) from None


def _call(request: int, tid: int, data: int = 0) -> int:
    result = _ptrace(request, tid, None, ctypes.c_void_p(data) if data else None)
    return -ctypes.get_errno() if result < 0 else 0


class _Pause:
    def __init__(self, pid: int):
        self.pid = pid
        self.attached: List[int] = []
        self.pending_signals: Dict[int, int] = {}

    def attach_all(self) -> None:
        for _ in range(MAX_ROUNDS):
            new = [t for t in list_tasks(self.pid) if t not in self.attached]
            if not new:
                return
            for tid in new:
                self._attach(tid)
        # Threads keep appearing faster than we stop them: read what we have.

    def _attach(self, tid: int) -> None:
        err = _call(PTRACE_SEIZE, tid)
        if err == -errno.ESRCH:
            return  # the thread exited in between
        if err == -errno.EPERM:
            if tid == self.pid or not self.attached:
                raise PermissionDeniedError("not allowed to ptrace process %d" % self.pid)
            return
        if err < 0:
            raise OSError(-err, "PTRACE_SEIZE %d: %s" % (tid, os.strerror(-err)))
        self.attached.append(tid)
        if _call(PTRACE_INTERRUPT, tid) < 0:
            return
        self._wait_stopped(tid)

    def _wait_stopped(self, tid: int) -> None:
        while True:
            try:
                _, status = os.waitpid(tid, WALL)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self.attached.remove(tid)
                return
            if os.WIFSTOPPED(status):
                sig = os.WSTOPSIG(status)
                if (status >> 16) == PTRACE_EVENT_STOP:
                    return  # our interrupt (or a group stop): stopped
                # A signal was about to be delivered; keep it for detach and stay stopped.
                if sig != signal.SIGTRAP:
                    self.pending_signals[tid] = sig
                return

    def detach_all(self) -> None:
        # Block Ctrl-C while resuming so a second interrupt cannot leave a thread stopped.
        old = None
        try:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        except (ValueError, OSError):
            pass
        try:
            for tid in self.attached:
                _call(PTRACE_DETACH, tid, self.pending_signals.get(tid, 0))
            self.attached = []
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def paused(pid: int) -> Iterator[List[int]]:
    """Stop all threads of ``pid`` for the duration of the block."""
    pause = _Pause(pid)
    try:
        pause.attach_all()
        yield list(pause.attached)
    finally:
        pause.detach_all()


@contextmanager
def not_paused(pid: int) -> Iterator[List[int]]:
    """The ``--nonblocking`` stand-in for ``paused``."""
    yield []
