"""Following a process's new children while sampling (``record --subprocesses``).

Why a module of its own: the watcher is a thread, and a recording that follows no
children (most) need not import ``threading`` before its first sample.
"""
from __future__ import annotations

import threading
import time

from .errors import (NotPythonError, PermissionDeniedError, ProcessExitedError,
                     ProcessNotFoundError, SnapshotError, UnsupportedVersionError)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Set


#: How often the subprocess watcher lists descendants.
CHILD_POLL = 1.0
#: Attach attempts for a child whose interpreter is not ready yet: for about this many polls.
CHILD_ATTEMPTS = 5
#: The poll interval while a new child is still being looked at (forked, not yet exec'd or
#: not yet initialised): a short-lived Python child is not missed for want of a second poll.
CHILD_SOON = 0.1
#: Seconds after it first appears that a not-yet-Python child counts as new.
CHILD_NEW = 2.0


def _exe(psutil, pid: int) -> str:
    try:
        return psutil.Process(pid).exe()
    except psutil.Error:
        return ""


class ChildWatcher(threading.Thread):
    """Finds new descendants of the root process and attaches to them off the hot path."""

    def __init__(self, root: int, known: Set[int], attach):
        super().__init__(name="pyspy-repl child watcher", daemon=True)
        self.root = root
        self.known = set(known)
        self.attach = attach
        self.stop_event = threading.Event()
        self.ready: List = []          # new Targets, taken by the sampling loop
        self.lock = threading.Lock()
        self.attempts: Dict[int, int] = {}
        self.ignored: Set[int] = set()
        #: pid -> the executable it ran when it was found not to be Python: a shell's child forked
        #: but not yet exec'd runs the shell; it is looked at again once its executable changes.
        self.not_python: Dict[int, str] = {}

    def run(self) -> None:
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil is a dependency
            return
        first_seen: Dict[int, float] = {}
        while not self.stop_event.is_set():
            try:
                children = [p.pid for p in psutil.Process(self.root).children(recursive=True)]
            except psutil.Error:
                return  # the root is gone: no new children
            now = time.monotonic()
            soon = False
            for pid in children:
                if pid in self.known or pid in self.ignored or self.stop_event.is_set():
                    continue
                first_seen.setdefault(pid, now)
                if pid in self.not_python and self.not_python[pid] == _exe(psutil, pid):
                    soon = soon or now - first_seen[pid] < CHILD_NEW
                    continue
                try:
                    target = self.attach(pid)
                    target.walker.interpreter_addr()
                except NotPythonError:
                    self.not_python[pid] = _exe(psutil, pid)
                    soon = soon or now - first_seen[pid] < CHILD_NEW
                    continue
                except (UnsupportedVersionError, PermissionDeniedError, ProcessExitedError,
                        ProcessNotFoundError):
                    self.ignored.add(pid)
                    continue
                except (SnapshotError, OSError, ValueError):
                    # not initialised yet (InterpreterNotFoundError, CorruptDataError...): retry soon
                    self.attempts[pid] = self.attempts.get(pid, 0) + 1
                    if now - first_seen[pid] >= CHILD_ATTEMPTS * CHILD_POLL:
                        self.ignored.add(pid)
                    soon = True
                    continue
                self.known.add(pid)
                with self.lock:
                    self.ready.append(target)
            self.stop_event.wait(CHILD_SOON if soon else CHILD_POLL)

    def take(self) -> List:
        if not self.ready:
            return []
        with self.lock:
            ready, self.ready = self.ready, []
        return ready
