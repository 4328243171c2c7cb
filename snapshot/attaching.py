"""Attaching to processes that are still starting (following new children: ``children.py``).

Why apart from the sampling loop: ``record -- CMD`` and ``--subprocesses``
attach to processes whose interpreter may not exist yet (a shell that has
not exec'd Python, an interpreter still initialising), which means retrying
with typed errors telling what waiting can fix; the loop itself only takes
the ``Target`` s this hands it.  psutil is imported only here, off the hot path.
"""
from __future__ import annotations

import time

from .errors import (NotPythonError, PermissionDeniedError, ProcessExitedError, ProcessNotFoundError,
                     SnapshotError, UnsupportedVersionError)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, Optional


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
