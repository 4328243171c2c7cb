"""Errors the engine raises; front ends print them as one line plus a hint.

Every error carries a short ``message`` (what happened) and a ``hint`` (what
to do about it).  Only front ends print errors and choose exit codes.
"""
from __future__ import annotations


class SnapshotError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1
    hint = ""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ProcessNotFoundError(SnapshotError):
    exit_code = 3
    hint = "check the pid with `ps` or `pgrep -af python`"


class PermissionDeniedError(SnapshotError):
    exit_code = 4
    hint = ("run as root (sudo), or as the same user with kernel.yama.ptrace_scope=0; "
            "in a container add --cap-add SYS_PTRACE")


class TracerAttachedError(PermissionDeniedError):
    """Another tracer (strace, gdb, a second pyspy-repl) holds the process: only one may."""

    exit_code = 4
    hint = ("a process can have one tracer at a time: wait for it to finish or stop it, "
            "or read without pausing: --nonblocking")

    def __init__(self, message: str, hint: str | None = None, tracer_pid: int = 0):
        super().__init__(message, hint)
        self.tracer_pid = tracer_pid


class NotPythonError(SnapshotError):
    exit_code = 5
    hint = "pass the pid of a CPython process (3.8 to 3.15)"


class KernelThreadError(NotPythonError):
    """The pid is a kernel thread: it has no user memory to read."""

    hint = "kernel threads run no Python; pass the pid of a CPython process (`pgrep -af python`)"


class InterpreterNotFoundError(SnapshotError):
    exit_code = 5
    hint = "the interpreter may still be starting or already finalizing; try again"


class BinaryReadError(SnapshotError, ValueError):
    """A file the target maps could not be opened or parsed (a ValueError too, for callers that skip it)."""

    exit_code = 5
    hint = "the interpreter's binary is unreadable or damaged; check the file the target runs"


class UnsupportedVersionError(SnapshotError):
    exit_code = 6
    hint = "supported: CPython 3.8 to 3.15"


class MemoryReadError(SnapshotError):
    """A remote read failed; carries the address and size."""

    exit_code = 7
    hint = "the process may have exited or changed under us; try again, or omit --nonblocking"

    def __init__(self, address: int, size: int, reason: str = ""):
        message = "could not read %d bytes at 0x%x" % (size, address)
        if reason:
            message += ": " + reason
        super().__init__(message)
        self.address = address
        self.size = size


class ProcessExitedError(SnapshotError):
    exit_code = 8
    hint = "the target exited while it was being read"


class CorruptDataError(SnapshotError):
    """Remote memory did not hold what a structure promised (bounded walk hit garbage)."""

    exit_code = 7
    hint = "the target changed while it was read; try again without --nonblocking"


class WorkBudgetError(SnapshotError):
    """One snapshot read or visited more than its work budget allows (garbage sizes or cycles)."""

    exit_code = 7
    hint = ("the target's memory looks corrupt or changed while it was read; try again, "
            "or without --locals")


class SnapshotFormatError(SnapshotError):
    """A saved snapshot is in a form this version cannot read."""

    exit_code = 2
    hint = "open it with a newer pyspy-repl"


class NativeModeError(SnapshotError):
    """Native frames were asked for where they cannot be had (``--nonblocking``, a source
    without registers): a usage error."""

    exit_code = 2

    @classmethod
    def nonblocking(cls) -> "NativeModeError":
        return cls("native mode needs the target paused: --native cannot be used with --nonblocking",
                   "drop --nonblocking (registers are only read while every thread is stopped)")
