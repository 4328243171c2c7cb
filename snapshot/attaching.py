"""Attaching to processes that are still starting, and following a process's new children.

Why apart from the sampling loop: ``record -- CMD`` and ``--subprocesses``
attach to processes whose interpreter may not exist yet (a shell that has
not exec'd Python, an interpreter still initialising), which means retrying
with typed errors telling what waiting can fix; the loop itself only takes
the ``Target`` s this hands it.  psutil is imported only here, off the hot path.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional, Set

from .errors import (NotPythonError, PermissionDeniedError, ProcessExitedError,
                     ProcessNotFoundError, SnapshotError, UnsupportedVersionError)

#: How often the subprocess watcher lists descendants.
CHILD_POLL = 1.0
#: Attach attempts for a child whose interpreter is not ready yet: for about this many polls.
CHILD_ATTEMPTS = 5
#: The poll interval while a new child is still being looked at (forked, not yet exec'd or
#: not yet initialised): a short-lived Python child is not missed for want of a second poll.
CHILD_SOON = 0.1
#: Seconds after it first appears that a not-yet-Python child counts as new.
CHILD_NEW = 2.0

def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (missing, or a zombie waiting to be reaped).

    Asked only after a failed read, so psutil's import is paid off the hot path.
    """
    import psutil
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:   # hidden from us (AccessDenied) is not gone
        return False


def attach_when_ready(pid: int, timeout: float = 10.0, attach=None, alive: Optional[Callable[[], bool]] = None,
                      not_python_after: Optional[float] = None):
    """Attach to a process that may still be starting its interpreter.

    Retries while the interpreter is not found or not initialised yet, until
    ``timeout``; errors that waiting cannot fix (permission, unsupported
    version) are raised at once, the last other error when time runs out.
    ``not_python_after``: a process that still runs no Python after these
    seconds (a shell that did not exec one) raises ``NotPythonError`` then.
    """
    if attach is None:
        from .target import attach
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        target = None
        try:
            target = attach(pid)
            # the runtime may be mapped before its first interpreter exists
            target.walker.interpreter_addr()
            return target
        except (PermissionDeniedError, UnsupportedVersionError):
            raise
        except SnapshotError as e:
            if target is not None:
                target.close()
            if (isinstance(e, NotPythonError) and not_python_after is not None
                    and time.monotonic() >= deadline - timeout + not_python_after):
                raise
            if isinstance(e, ProcessNotFoundError) or gone(pid) or (alive is not None and not alive()):
                raise ProcessExitedError("process %d exited before its interpreter could be found" % pid) from None
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


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
