"""ptrace requests the engine makes, through ``libc`` (x86-64 Linux).

Kept apart from ``live.py`` so the pause logic and the register reads share
one binding and one errno convention: every call returns ``-errno`` on
failure instead of raising, because the callers decide what a failure means
(a thread that exited between two calls is not an error).
"""
from __future__ import annotations

import errno
import os
import struct

from ..errors import SnapshotError
from . import libc
from .base import USER_REGS_SIZE, Registers

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional, Tuple


PTRACE_GETREGS = 12
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_EVENT_STOP = 128

_ptrace = libc.function("ptrace", libc.c_long, [libc.c_long, libc.c_long, libc.c_void_p, libc.c_void_p])


class RegistersUnavailableError(SnapshotError):
    """A thread's registers could not be had (not stopped by us, exited, or the source has none)."""

    exit_code = 7
    hint = "native frames need the target paused: omit --nonblocking"


def call(request: int, tid: int, addr: int = 0, data: int = 0) -> int:
    """One ptrace request; 0 or a positive result on success, ``-errno`` on failure."""
    libc.set_errno(0)
    result = _ptrace(request, tid, libc.c_void_p(addr) if addr else None,
                     libc.c_void_p(data) if data else None)
    if result < 0:
        err = libc.get_errno()
        if err:
            return -err
    return result


PTRACE_PEEKUSER = 3
#: Offset of ``orig_rax`` in ``struct user`` (x86-64: the 16th word of user_regs_struct).
_ORIG_RAX_OFFSET = 15 * 8


def syscall_number(tid: int) -> Optional[int]:
    """For a thread this process has stopped: the system call it was in (>= 0), -1 if it was
    running user code, None if that cannot be had.  One word (PTRACE_PEEKUSER), no buffer: the
    pause of a 1,000-thread target asks this of every thread, where /proc/TID/syscall costs
    an open and a read each."""
    libc.set_errno(0)
    result = _ptrace(PTRACE_PEEKUSER, tid, libc.c_void_p(_ORIG_RAX_OFFSET), None)
    if result == -1 and libc.get_errno():
        return None
    return result


_REGS_BUFFER = libc.create_string_buffer(USER_REGS_SIZE)
#: user_regs_struct word indexes of orig_rax and the six system call arguments
#: (rdi, rsi, rdx, r10, r8, r9).
_ORIG_RAX, _ARGS = 15, (14, 13, 12, 7, 9, 8)


def syscall_of(tid: int) -> Optional[Tuple[int, Tuple[int, ...]]]:
    """For a thread this process has stopped: (number, six arguments) of the system call it
    sits in, (-1, ()) when it was running user code, None if that cannot be had.  One
    PTRACE_GETREGS into a reused buffer: a pause asks this of every thread of the target, where
    /proc/TID/syscall costs an open, a read and a parse each."""
    if _ptrace(PTRACE_GETREGS, tid, None, _REGS_ADDR) < 0:
        return None
    words = _WORDS.unpack_from(_REGS_BUFFER, 0)
    number = words[_ORIG_RAX]
    if number >= 1 << 63:
        number -= 1 << 64
    if number < 0:
        return -1, ()
    return number, tuple(words[i] for i in _ARGS)


def get_registers(tid: int) -> Registers:
    """PTRACE_GETREGS of a thread this process has stopped (seized and interrupted)."""
    buffer = libc.create_string_buffer(USER_REGS_SIZE)
    err = call(PTRACE_GETREGS, tid, 0, libc.addressof(buffer))
    if err < 0:
        reason = "thread %d exited" % tid if err == -errno.ESRCH else os.strerror(-err)
        raise RegistersUnavailableError("could not read the registers of thread %d: %s" % (tid, reason))
    return Registers.from_user_regs(buffer.raw)


_REGS_ADDR = libc.c_void_p(libc.addressof(_REGS_BUFFER))
_WORDS = struct.Struct("<%dQ" % (USER_REGS_SIZE // 8))
