"""A live process's memory, read with ``process_vm_readv``.

One system call fills many local buffers from many remote addresses (every
thread state of a sample in one call, every data-stack chunk in the next);
where that call is not allowed, ``/proc/PID/mem`` is read instead.  Every
failure leaves as a ``MemoryReadError`` (address and size),
``ProcessExitedError`` or ``PermissionDeniedError``.
"""
from __future__ import annotations

import ctypes
import errno
import os
from typing import List, Optional, Sequence, Tuple

from ..errors import MemoryReadError, PermissionDeniedError, ProcessExitedError
from . import procfs

#: Largest single read we accept; remote sizes are untrusted.
MAX_READ = 64 << 20
#: Linux's IOV_MAX: process_vm_readv takes at most this many iovecs per call.
IOV_MAX = 1024


class _IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                              ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
_process_vm_readv.restype = ctypes.c_ssize_t


class ProcessMemory:
    """A live process's memory, read with ``process_vm_readv``."""

    def __init__(self, pid: int):
        self.pid = pid
        self._mem_file: Optional[int] = None
        self._use_vm_readv = True
        self.read_calls = 0  # system calls made, for benchmarks

    # -- single reads ---------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        if size < 0 or size > MAX_READ or address <= 0:
            raise MemoryReadError(address, size, "refusing an implausible read")
        if size == 0:
            return b""
        if self._use_vm_readv:
            buffer = ctypes.create_string_buffer(size)
            local = _IOVec(ctypes.addressof(buffer), size)
            remote = _IOVec(address, size)
            self.read_calls += 1
            got = _process_vm_readv(self.pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
            if got == size:
                return buffer.raw
            if got < 0:
                err = ctypes.get_errno()
                if err in (errno.ENOSYS, errno.EINVAL) or (err == errno.EPERM and self._mem_usable()):
                    self._use_vm_readv = False
                    return self._read_mem(address, size)
                self._raise(err, address, size)
            raise MemoryReadError(address, size, "short read (%d bytes)" % got)
        return self._read_mem(address, size)

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Read many ranges with as few system calls as the kernel allows.

        process_vm_readv stops at the first remote range that faults, so on a
        short count the completed prefix is kept and the rest retried one by
        one to find which of them are unreadable.
        """
        results: List[Optional[bytes]] = [None] * len(requests)
        if not self._use_vm_readv:
            for i, (address, size) in enumerate(requests):
                try:
                    results[i] = self.read(address, size)
                except MemoryReadError:
                    pass
            return results
        start = 0
        while start < len(requests):
            chunk = requests[start:start + IOV_MAX]
            valid = [(i, a, s) for i, (a, s) in enumerate(chunk) if 0 < s <= MAX_READ and a > 0]
            if not valid:
                start += len(chunk)
                continue
            total = sum(s for _, _, s in valid)
            buffer = ctypes.create_string_buffer(total)
            base = ctypes.addressof(buffer)
            n = len(valid)
            local = (_IOVec * n)()
            remote = (_IOVec * n)()
            position = 0
            for j, (_, address, size) in enumerate(valid):
                local[j].iov_base = base + position
                local[j].iov_len = size
                remote[j].iov_base = address
                remote[j].iov_len = size
                position += size
            self.read_calls += 1
            got = _process_vm_readv(self.pid, local, n, remote, n, 0)
            if got < 0:
                err = ctypes.get_errno()
                if err == errno.ESRCH:
                    raise ProcessExitedError("process %d exited" % self.pid)
                if err in (errno.EPERM, errno.ENOSYS, errno.EINVAL) and self._mem_usable():
                    self._use_vm_readv = False
                    return self.read_many(requests)
                if err == errno.EPERM:
                    self._raise(err, valid[0][1], valid[0][2])
                got = 0
            raw = buffer.raw
            position = 0
            for i, address, size in valid:
                if position + size <= got:
                    results[start + i] = raw[position:position + size]
                else:
                    try:
                        results[start + i] = self.read(address, size)
                    except MemoryReadError:
                        results[start + i] = None
                position += size
            start += len(chunk)
        return results

    def close(self) -> None:
        if self._mem_file is not None:
            os.close(self._mem_file)
            self._mem_file = None

    # -- internals ----------------------------------------------------------
    def _mem_usable(self) -> bool:
        try:
            self._open_mem()
            return True
        except OSError:
            return False

    def _open_mem(self) -> int:
        if self._mem_file is None:
            self._mem_file = os.open(procfs.mem_path(self.pid), os.O_RDONLY)
        return self._mem_file

    def _read_mem(self, address: int, size: int) -> bytes:
        try:
            data = os.pread(self._open_mem(), size, address)
        except FileNotFoundError:
            raise ProcessExitedError("process %d exited" % self.pid) from None
        except PermissionError:
            raise PermissionDeniedError("not allowed to read the memory of process %d" % self.pid) from None
        except OSError as e:
            raise MemoryReadError(address, size, e.strerror or str(e)) from None
        self.read_calls += 1
        if len(data) != size:
            raise MemoryReadError(address, size, "short read (%d bytes)" % len(data))
        return data

    def _raise(self, err: int, address: int, size: int):
        if err == errno.ESRCH:
            raise ProcessExitedError("process %d exited" % self.pid)
        if err == errno.EPERM:
            raise PermissionDeniedError("not allowed to read the memory of process %d" % self.pid)
        raise MemoryReadError(address, size, os.strerror(err))
