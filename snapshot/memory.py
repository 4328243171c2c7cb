"""Reading another process's memory: the ``MemoryReader`` seam.

The walker sees only ``MemoryReader``; live processes, core files and
debugger inferiors each provide one.  ``ProcessMemory`` uses
``process_vm_readv`` so that one system call can fill many local buffers from
many remote addresses (every thread state of a sample in one call, every
data-stack chunk in the next), and falls back to ``/proc/PID/mem`` where that
call is not allowed.
"""
from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass
from typing import List, Optional, Protocol, Sequence, Tuple

from .errors import MemoryReadError, PermissionDeniedError, ProcessExitedError, ProcessNotFoundError

#: Largest single read we accept; remote sizes are untrusted.
MAX_READ = 64 << 20
#: Linux's IOV_MAX: process_vm_readv takes at most this many iovecs per call.
IOV_MAX = 1024


@dataclass(frozen=True)
class MemoryMap:
    start: int
    end: int
    perms: str
    offset: int
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start

    def __contains__(self, address: int) -> bool:
        return self.start <= address < self.end


class MemoryReader(Protocol):
    """What the engine needs from a memory source."""

    pid: int

    def read(self, address: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``address``, or raise ``MemoryReadError``."""

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Batched reads; an unreadable request gives ``None`` in its place."""

    def maps(self) -> List[MemoryMap]:
        """The address space's mappings (for discovery and bounds checks)."""


class _IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                              ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
_process_vm_readv.restype = ctypes.c_ssize_t


def parse_maps(text: str) -> List[MemoryMap]:
    result = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        start, _, end = parts[0].partition("-")
        result.append(MemoryMap(int(start, 16), int(end, 16), parts[1], int(parts[2], 16),
                                parts[5].strip() if len(parts) > 5 else ""))
    return result


def check_process(pid: int) -> None:
    """Raise the right error for a pid that cannot be inspected at all."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ProcessNotFoundError("no process with pid %d" % pid) from None
    except PermissionError:
        pass  # exists, owned by someone else: reading will tell whether we may
    if not os.path.exists("/proc/%d" % pid):
        raise ProcessNotFoundError("no process with pid %d" % pid)


class ProcessMemory:
    """A live process's memory, read with ``process_vm_readv``."""

    def __init__(self, pid: int):
        check_process(pid)
        self.pid = pid
        self._mem_file: Optional[int] = None
        self._use_vm_readv = True
        self._maps: Optional[List[MemoryMap]] = None
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

    # -- maps -------------------------------------------------------------
    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        if self._maps is None or refresh:
            try:
                with open("/proc/%d/maps" % self.pid) as f:
                    self._maps = parse_maps(f.read())
            except FileNotFoundError:
                raise ProcessExitedError("process %d exited" % self.pid) from None
            except PermissionError:
                raise PermissionDeniedError("not allowed to read the memory map of process %d" % self.pid) from None
        return self._maps

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
            self._mem_file = os.open("/proc/%d/mem" % self.pid, os.O_RDONLY)
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


class BytesMemory:
    """An in-memory image (tests, and snapshots of regions): {base: bytes}."""

    def __init__(self, regions: dict, pid: int = 0):
        self.pid = pid
        self._regions = sorted(regions.items())

    def read(self, address: int, size: int) -> bytes:
        for base, data in self._regions:
            if base <= address and address + size <= base + len(data):
                return data[address - base:address - base + size]
        raise MemoryReadError(address, size, "not in the image")

    def read_many(self, requests):
        out = []
        for address, size in requests:
            try:
                out.append(self.read(address, size))
            except MemoryReadError:
                out.append(None)
        return out

    def maps(self) -> List[MemoryMap]:
        return [MemoryMap(b, b + len(d), "r--p", 0, "") for b, d in self._regions]
