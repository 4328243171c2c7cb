"""Stopping every thread of a target for one consistent read, and always resuming it.

Each task is PTRACE_SEIZEd and PTRACE_INTERRUPTed (seize sends no SIGSTOP,
so job control and the target's own signal handling are untouched), the task
list is read again until no new task appears, and on exit every task is
detached whatever happened in between.  The tool's own interrupts are held
for the whole window (``signals.deferred_signals``); a detach that fails
because the thread was not yet in its stop waits for the stop and detaches
again.  If this process is killed outright the kernel detaches its tracees
and, with seize, no SIGSTOP is left behind.  All ptrace calls of one pause
come from one OS thread, which a ``with`` block guarantees.

Another tracer (strace, gdb, a second pyspy-repl) makes PTRACE_SEIZE fail
with EPERM: a short-lived one (a concurrent dump) is waited for, a lasting
one is named in a ``TracerAttachedError``.
"""
from __future__ import annotations

import errno
import gc
import os
import sys
import time

import _signal as signal  # not ``signal``: its enums cost start-up (see signals.py)

from ..errors import PermissionDeniedError, SnapshotError, TracerAttachedError
from . import procfs
from .ptrace import PTRACE_DETACH, PTRACE_EVENT_STOP, PTRACE_INTERRUPT, PTRACE_SEIZE, call
from .signals import deferred_signals

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Dict, List, Optional, Set


WALL = 0x40000000
#: Attach rounds: threads started while we attach are picked up by a new round.
MAX_ROUNDS = 16
#: Seconds to wait for another tracer to let go before naming it in an error.
TRACER_WAIT = 1.5
#: How long a zombie leader may stay unreported once the other threads are reaped (then it is let go).
LEADER_EXIT_WAIT = 1.0


class _Busy(Exception):
    """Another tracer holds a thread; carries its pid."""

    def __init__(self, tracer: int):
        super().__init__(tracer)
        self.tracer = tracer


def describe_tracer(tracer: int) -> str:
    """'pid 123 (strace)', or '(another pyspy-repl)' when it is one of us."""
    if tracer == os.getpid():
        return "this pyspy-repl (another of its threads)"
    name = procfs.comm(tracer) or "?"
    argv = " ".join(procfs.cmdline(tracer))
    if "pyspy-repl" in argv or "repl.cli" in argv or "pyspy-snapshot" in argv:
        name = "another pyspy-repl"
    return "pid %d (%s)" % (tracer, name)


def tracer_error(pid: int, tracer: int) -> TracerAttachedError:
    return TracerAttachedError("process %d is already traced by %s" % (pid, describe_tracer(tracer)),
                               tracer_pid=tracer)


class Pause:
    """One pause of one process: attach every task, remember pending signals, detach all."""

    def __init__(self, pid: int, list_tasks: Callable[[int], List[int]] = procfs.task_ids_or_raise):
        self.pid = pid
        self.list_tasks = list_tasks
        self.attached: List[int] = []
        self.pending_signals: Dict[int, int] = {}
        self._reported: Set[int] = set()  # stops taken while polling for the leader, not yet waited for

    def attach_all(self) -> None:
        if self.pid == os.getpid():
            raise PermissionDeniedError(
                "process %d is this pyspy-repl itself: a process cannot pause its own threads" % self.pid,
                hint="read it without pausing: --nonblocking")
        deadline = time.monotonic() + TRACER_WAIT
        while True:
            try:
                self._rounds()
                return
            except _Busy as busy:
                # Let go of what we hold (two tools each holding half would wait on
                # each other), back off a little, and start again.
                self.detach_all()
                if time.monotonic() > deadline:
                    raise tracer_error(self.pid, busy.tracer) from None
                time.sleep((2 + time.perf_counter_ns() % 18) / 1000)  # 2-20 ms, differing per tool

    def _rounds(self) -> None:
        attached = set(self.attached)
        for _ in range(MAX_ROUNDS):
            new = [t for t in self.list_tasks(self.pid) if t not in attached]
            if not new:
                return
            # Seize and interrupt the whole round first, then wait for each stop: the
            # threads stop in parallel instead of one context switch after another.
            interrupted = []
            try:
                for tid in new:
                    if self._attach(tid, wait=False):
                        interrupted.append(tid)
            finally:
                for tid in interrupted:
                    self._wait_stopped(tid)
            attached.update(new)
        # Threads keep appearing faster than we stop them: read what we have.

    def _attach(self, tid: int, wait: bool = True) -> bool:
        """Seize and interrupt ``tid``; True when it was interrupted and its stop not yet waited for."""
        err = call(PTRACE_SEIZE, tid)
        if err == -errno.EPERM:
            tracer = procfs.tracer_pid(self.pid, tid)
            if tracer == 0:
                err = call(PTRACE_SEIZE, tid)  # a tracer may just have let go
                tracer = procfs.tracer_pid(self.pid, tid) if err == -errno.EPERM else 0
            if tracer:
                raise _Busy(tracer)  # another tool, or another thread of this one: wait for it
        if err == -errno.ESRCH:
            return False  # the thread exited in between
        if err == -errno.EPERM:
            if tid == self.pid or not self.attached:
                raise PermissionDeniedError("not allowed to ptrace process %d" % self.pid)
            return False
        if err < 0:
            raise SnapshotError("could not pause thread %d of process %d: %s" % (tid, self.pid, os.strerror(-err)),
                                hint="try again, or read without pausing: --nonblocking")
        self.attached.append(tid)
        if call(PTRACE_INTERRUPT, tid) < 0:
            return False
        if wait:
            self._wait_stopped(tid)
            return False
        return True

    def _wait_stopped(self, tid: int) -> None:
        if tid == self.pid:
            self._wait_leader()
            return
        if tid in self._reported:
            self._reported.discard(tid)
            return
        while True:
            try:
                _, status = os.waitpid(tid, WALL)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if self._stopped_or_gone(tid, status):
                return

    def _stopped_or_gone(self, tid: int, status: int) -> bool:
        """Account for one wait status of ``tid``; True when it is in our stop or has exited."""
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            if tid in self.attached:
                self.attached.remove(tid)
            return True
        if os.WIFSTOPPED(status):
            sig = os.WSTOPSIG(status)
            if (status >> 16) == PTRACE_EVENT_STOP:
                return True  # our interrupt (or a group stop): stopped
            # A signal was about to be delivered; keep it for detach and stay stopped.
            if sig != signal.SIGTRAP:
                self.pending_signals[tid] = sig
            return True
        return False

    def _wait_leader(self) -> None:
        """Wait for the thread-group leader without blocking in waitpid.

        Why: the kernel reports a leader that exited only once every other thread of its
        group is released, and a traced thread that exited is released only when its
        tracer (this tool) waits for it.  A process that exits while it is being paused
        (``exit_group`` from Python's finalisation) would leave a blocking waitpid on the
        leader waiting for ever, this tool hung and the target a traced zombie.  So poll
        (the stop of a running leader takes microseconds), and while the leader is a
        zombie, reap the other threads this pause holds."""
        tid = self.pid
        nap = 0.00002
        zombie_since = None
        while True:
            try:
                got, status = os.waitpid(tid, WALL | os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if got and self._stopped_or_gone(tid, status):
                return
            state = procfs.state(tid)
            if state is None:
                if tid in self.attached:
                    self.attached.remove(tid)
                return
            if state in ("Z", "X"):
                self._reap_exited_others()
                zombie_since = zombie_since if zombie_since is not None else time.monotonic()
                if time.monotonic() - zombie_since > LEADER_EXIT_WAIT:
                    if tid in self.attached:
                        self.attached.remove(tid)  # it will not stop again: nothing to detach
                    return
            time.sleep(nap)
            nap = min(nap * 2, 0.001)

    def _reap_exited_others(self) -> None:
        for other in list(self.attached):
            if other == self.pid:
                continue
            try:
                got, status = os.waitpid(other, WALL | os.WNOHANG)
            except ChildProcessError:
                self.attached.remove(other)
                continue
            except InterruptedError:
                continue
            if got and self._stopped_or_gone(other, status) and other in self.attached:
                self._reported.add(other)  # stopped: its own wait must not block for this stop again

    def detach_all(self) -> None:
        for tid in list(self.attached):
            self._detach(tid)
        self.attached = []
        self.pending_signals = {}
        self._reported = set()

    def _detach(self, tid: int) -> None:
        sig = self.pending_signals.get(tid, 0)
        if call(PTRACE_DETACH, tid, 0, sig) != -errno.ESRCH:
            return
        # ESRCH: exited, or traced by us but not (yet) in a ptrace-stop.  Stop it and detach again.
        if call(PTRACE_INTERRUPT, tid) == 0:
            self._wait_stopped(tid)
            call(PTRACE_DETACH, tid, 0, self.pending_signals.get(tid, sig))


class paused:
    """Stop all threads of ``pid`` for the duration of the ``with`` block; ``as``: the stopped tids.

    For the block the tool's cyclic garbage collector is held (a full collection of a
    large heap would stretch a pause now and then) and, where allowed, the pausing
    thread runs at a higher priority (``PAUSE_NICE_BOOST``).  ``on_pause`` is told the
    stopped tids once they are all stopped, and ``[]`` before they run again.  (A class,
    not ``contextlib.contextmanager``: see signals.py.)
    """

    def __init__(self, pid: int, on_pause: Callable[[List[int]], None] = lambda tids: None):
        self.pid = pid
        self.on_pause = on_pause

    def __enter__(self) -> List[int]:
        self._collecting = gc.isenabled()
        self._signals = deferred_signals()
        self._signals.__enter__()
        try:
            self._pause = Pause(self.pid)
            gc.disable()
            self._niceness = _raise_priority()
            try:
                self._pause.attach_all()
                stopped = list(self._pause.attached)
                self.on_pause(stopped)
            except BaseException:
                self._resume()
                raise
        except BaseException:
            self._signals.__exit__(*sys.exc_info())
            raise
        return stopped

    def __exit__(self, *exc) -> bool:
        try:
            self._resume()
        finally:
            self._signals.__exit__(*exc)
        return False

    def _resume(self) -> None:
        """What the block's end undoes, in this order: tell ``on_pause``, detach every
        thread, restore the priority and the collector."""
        self.on_pause([])
        self._pause.detach_all()
        _restore_priority(self._niceness)
        if self._collecting:
            gc.enable()


#: How much the pausing thread's nice value is lowered for the pause, where allowed (root,
#: CAP_SYS_NICE).  The target is frozen while we wait on a busy machine's run queue (measured:
#: 80-150 ms of a 1,000-thread pause on a loaded 2-core machine, against 20 ms of work).
PAUSE_NICE_BOOST = 10


def _raise_priority() -> Optional[int]:
    """Lower this thread's nice value for the pause; its old value, or None if unchanged.
    (On Linux ``setpriority(PRIO_PROCESS, 0)`` applies to the calling thread only.)"""
    try:
        old = os.getpriority(os.PRIO_PROCESS, 0)
        new = max(-20, old - PAUSE_NICE_BOOST)
        if new == old:
            return None
        os.setpriority(os.PRIO_PROCESS, 0, new)
        return old
    except (OSError, AttributeError):
        return None  # not allowed (an unprivileged user): the pause runs at the usual priority


def _restore_priority(old: Optional[int]) -> None:
    if old is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, old)
        except OSError:
            pass


class not_paused:
    """The ``--nonblocking`` stand-in for ``paused``: nothing stopped, ``as`` gives ``[]``."""

    def __init__(self, pid: int = 0):
        self.pid = pid

    def __enter__(self) -> List[int]:
        return []

    def __exit__(self, *exc) -> bool:
        return False
