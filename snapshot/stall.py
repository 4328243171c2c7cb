"""Stall detection: has any Python stack in a process tree changed lately?

``watch --stall S`` reports a hang before its overall timeout when nothing
moved for S seconds.  The monitor only reads (nonblocking samples, psutil's
process list and CPU times); deciding that S seconds is too long, and what
to do then, is the front end's job.
"""
from __future__ import annotations

import time

from .errors import NotPythonError
from .hang import process_tree, stack_key

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, Iterable, Optional, Tuple


class StallMonitor:
    """Nonblocking samples of a tree: how long has no Python stack changed?

    ``poll()`` samples every Python process of the tree once (without pausing
    it) and returns the seconds since the last change.  A change is: a process
    appearing or exiting, a thread appearing or exiting, any frame of any
    thread changing, or a read failing (a busy process is more likely to give
    an inconsistent nonblocking read; never mistake that for a stall), or the
    tree having used at least ``busy_share`` of one CPU since the previous poll
    (a tight loop can keep the very same stack while it works; a livelock is
    still caught by the overall timeout).  With no Python process in the tree
    there is no stall.
    """

    #: seconds before retrying to attach a process that was not ready
    RETRY = 0.5

    def __init__(self, root_pid: int, exclude: Iterable[int] = (), busy_share: float = 0.05):
        self.root_pid = root_pid
        self.busy_share = busy_share
        self._cpu: Dict[int, float] = {}
        self._polled_at: Optional[float] = None
        self.exclude = set(exclude)
        self.targets: Dict[int, Any] = {}
        self._identity: Dict[int, Tuple[Optional[float], str]] = {}
        self._not_python: Dict[int, Tuple[Optional[float], str]] = {}
        self._retry_at: Dict[int, float] = {}
        self._signature: Optional[Any] = None
        self._changed_at = time.monotonic()
        self.seen: Dict[int, Optional[float]] = {}   # every pid ever in the tree -> create_time

    def unchanged_for(self) -> float:
        return time.monotonic() - self._changed_at

    def poll(self) -> float:
        now = time.monotonic()
        parts = []
        python_seen = False
        live = set()
        cpu_used = 0.0
        for proc in process_tree(self.root_pid, self.exclude):
            pid = proc.pid
            live.add(pid)
            try:
                ident = (proc.create_time(), _exe(proc))
                times = proc.cpu_times()
                cpu = times.user + times.system
            except Exception:  # noqa: BLE001
                continue
            cpu_used += max(0.0, cpu - self._cpu.get(pid, cpu))
            self._cpu[pid] = cpu
            self.seen.setdefault(pid, ident[0])
            if self._identity.get(pid) != ident:
                self._drop(pid)
                self._identity[pid] = ident
            if self._not_python.get(pid) == ident:
                parts.append((pid, "-"))
                continue
            target = self.targets.get(pid)
            if target is None and now >= self._retry_at.get(pid, 0.0):
                try:
                    target = self.targets[pid] = _attach(pid)
                except NotPythonError:
                    self._not_python[pid] = ident
                    parts.append((pid, "-"))
                    continue
                except Exception:  # noqa: BLE001 - starting up, exiting, unsupported...
                    self._retry_at[pid] = now + self.RETRY
            if target is None:
                parts.append((pid, "?"))
                continue
            python_seen = True
            try:
                snap = target.sample(blocking=False)
            except Exception:  # noqa: BLE001
                parts.append((pid, ("error", now)))   # never equal twice: counts as a change
                continue
            parts.append((pid, tuple(sorted((t.thread_id, stack_key(t)) for t in snap.threads))))
        for pid in [p for p in self.targets if p not in live]:
            self._drop(pid)
        for pid in [p for p in self._cpu if p not in live]:
            del self._cpu[pid]
        now = time.monotonic()   # attaching may have taken a while: measure from the end of the poll
        busy = (self._polled_at is not None and
                cpu_used >= self.busy_share * max(1e-3, now - self._polled_at))
        self._polled_at = now
        signature = tuple(sorted(parts, key=lambda x: x[0]))
        if not python_seen or busy or signature != self._signature:
            self._signature = signature
            self._changed_at = now
        return self.unchanged_for()

    def _drop(self, pid: int) -> None:
        target = self.targets.pop(pid, None)
        if target is not None:
            try:
                target.close()
            except Exception:  # noqa: BLE001
                pass
        self._not_python.pop(pid, None)
        self._retry_at.pop(pid, None)

    def close(self) -> None:
        for pid in list(self.targets):
            self._drop(pid)


def _attach(pid: int):
    from .target import attach
    return attach(pid)


def _exe(proc) -> str:
    """The process's executable path ('' when hidden from us): part of its identity."""
    try:
        return proc.exe()
    except Exception:  # noqa: BLE001 - psutil.Error (AccessDenied, NoSuchProcess, ZombieProcess)
        return ""
