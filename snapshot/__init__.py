"""pyspy-repl's engine: read a live CPython process from outside and rebuild its stacks.

Public API (front ends use only this):

    target = attach(pid)                 # find the interpreter; raises SnapshotError subclasses
    target = attach_process(process)     # the same over any snapshot.process source (image, core...)
    snap = target.snapshot(locals=True, blocking=True, max_repr=1024)   # -> model.Snapshot
    stacks = target.sample(blocking=True)  # hot path: Snapshot without locals, cached code objects
    target.close()

Data flows one way: Process -> interpreter (layout + runtime address)
-> walker -> Snapshot (frozen model) -> writers / renderers.
"""
from .errors import (CorruptDataError, InterpreterNotFoundError, MemoryReadError, NotPythonError,
                     PermissionDeniedError, ProcessExitedError, ProcessNotFoundError, SnapshotError,
                     TracerAttachedError, UnsupportedVersionError)
from .model import Frame, Local, Snapshot, ThreadStack

__all__ = [
    "attach", "attach_process", "Target", "TracerAttachedError", "Snapshot", "ThreadStack", "Frame", "Local", "SnapshotError",
    "ProcessNotFoundError", "PermissionDeniedError", "NotPythonError", "InterpreterNotFoundError",
    "UnsupportedVersionError", "MemoryReadError", "ProcessExitedError", "CorruptDataError",
]


def attach(pid: int, **options):
    """Attach to a live process (lazy import keeps `import snapshot` cheap)."""
    from .target import attach as _attach
    return _attach(pid, **options)


def attach_process(process, **options):
    """A target over any ``snapshot.process`` source (``LiveProcess``, ``ImageProcess``, ...)."""
    from .target import attach_process as _attach_process
    return _attach_process(process, **options)


def __getattr__(name):
    if name == "Target":
        from .target import Target
        return Target
    raise AttributeError(name)
