"""A live process's memory, read with ``process_vm_readv``.

One system call fills many local buffers from many remote addresses (every
thread state of a sample in one call, every data-stack chunk in the next);
where that call is not allowed, ``/proc/PID/mem`` is read instead.  A sampler
brackets each pass with ``begin_pass``/``end_pass``: the ranges the last pass
read are read again in one call at the start of the next, and the pass's reads
are served from that copy, so a steady stack costs one system call per pass
instead of one per link of the chains it follows (thread list, frames).  Every
failure leaves as a ``MemoryReadError`` (address and size),
``ProcessExitedError`` or ``PermissionDeniedError``.
"""
from __future__ import annotations

import errno
import os
import struct
from _thread import get_ident
from itertools import accumulate, chain, compress
from operator import itemgetter, ne

from ..errors import MemoryReadError, PermissionDeniedError, ProcessExitedError
from . import libc, procfs

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Sequence, Set, Tuple

    from .plans import PreparedPlan


#: Largest single read we accept; remote sizes are untrusted.
MAX_READ = 64 << 20
#: Linux's IOV_MAX: process_vm_readv takes at most this many iovecs per call.
IOV_MAX = 1024
#: Single reads up to this size land in one buffer made once per reader (in the thread that
#: made it): a ctypes buffer per read (an allocation and an audit event) was a tenth of a read.
SCRATCH = 1 << 16
#: Bounds of what one pass's plan re-reads at the start of the next (ranges, bytes).
PLAN_RANGES = 8192
PLAN_BYTES = 8 << 20
#: A plan holding up to PLAN_SPARE ranges more than a pass read is kept for up to PLAN_KEEP passes.
PLAN_SPARE = 8
PLAN_KEEP = 64
#: Window lists whose spans ``unchanged_outside`` keeps worked out (each is held, so its id stays its own).
MAX_WINDOWS = 16


_IOVec = libc.IOVec
_process_vm_readv = libc.process_vm_readv


def _cutter(spans: List[Tuple[int, int]]):
    """What cuts ``spans`` (start, end) out of bytes, as a tuple, in one call (an empty
    slice more makes it a tuple even for one span)."""
    return itemgetter(*[slice(start, end) for start, end in spans], slice(0, 0))


class ProcessMemory:
    """A live process's memory, read with ``process_vm_readv``."""

    def __init__(self, pid: int):
        self.pid = pid
        self._mem_file: Optional[int] = None
        self._use_vm_readv = True
        self.read_calls = 0  # system calls made, for benchmarks
        self._plan: List[Tuple[int, int]] = []  # what the last pass read: distinct (address, size)
        self._plan_spare = 0  # passes in a row that read less than the plan held
        # This pass's re-read of the plan, by (address, size): a request that repeats one of the
        # last pass's is one dict lookup, its tuple the key (no size checks, no slicing).
        self._served: Optional[Dict[Tuple[int, int], bytes]] = None
        #: When the re-read came in one call: where each planned range is in it (``_served`` is then
        #: empty).  A range's bytes are cut out when asked for: a pass made from the last one asks
        #: for few, and cutting every range at the start of each pass was a tenth of such a pass.
        self._lazy: Optional[Dict[Tuple[int, int], Tuple[int, int]]] = None
        self._by_address: Optional[Dict[int, Tuple[Tuple[int, int], bytes]]] = None  # built on an inexact miss
        self._used: Set[Tuple[int, int]] = set()  # plan ranges this pass was served
        self._new: Set[Tuple[int, int]] = set()  # ranges this pass read that the plan lacks
        self._pass_raw: Optional[bytes] = None  # this pass's re-read, whole, when it came in one call
        #: (prepared plan, its bytes) of the last pass when every read it made was served from them
        self._exact: Optional[tuple] = None
        self._used_all = False  # ``unchanged_outside`` compared every byte of the plan: all used
        self._missed = False  # this pass asked for a range its plan lacks (read or not)
        #: id(windows) -> (prepared plan, windows, their spans, the gaps between): the last few asked
        #: (a sampler may compare with a few references in turn)
        self._windows: Dict[int, tuple] = {}
        self._prepared: Optional["PreparedPlan"] = None  # the plan's iovecs, built once per plan
        self._scratch = bytearray(SCRATCH)
        self._scratch_view = memoryview(self._scratch)
        self._scratch_owner = get_ident()
        self._scratch_c = (libc.c_char * SCRATCH).from_buffer(self._scratch)  # held: the address stays ours
        self._local = _IOVec(libc.addressof(self._scratch_c), 0)
        self._remote = _IOVec(0, 0)
        self._local_ref, self._remote_ref = libc.byref(self._local), libc.byref(self._remote)

    # -- passes ---------------------------------------------------------
    def begin_pass(self) -> None:
        """Read again, in one call, what the last pass read; this pass's reads of the same
        addresses are served from that copy (taken now: inside a pause, it is the paused state)."""
        served: Optional[Dict[int, bytes]] = None
        plan = self._plan
        self._pass_raw = self._lazy = None
        self._used_all = self._missed = False
        if plan:
            prepared = self._prepared
            if prepared is None or prepared.plan is not plan:
                from .plans import PreparedPlan  # (samplers only: a one-shot dump has no plan)
                prepared = self._prepared = PreparedPlan.of(plan, IOV_MAX, MAX_READ) if self._use_vm_readv else None
            if prepared is not None and prepared.read(self) is not None:
                self._pass_raw = prepared.raw
                self._lazy = prepared.where
                served = {}
            if served is None:  # a range faults, or another reason to take the general path
                served = {key: data for key, data in zip(plan, self._read_many(plan)) if data is not None}
        self._served = served if served is not None else {}
        self._by_address = None
        self._used = set()
        self._new = set()

    def read_plan_again(self) -> bool:
        """Inside a pass that has served nothing yet: its re-read taken once more, in one call
        (a sampler not pausing whose re-read matched no earlier pass: most such are torn).
        False when it cannot be (no one-call re-read, something served, or it did not read whole)."""
        prepared = self._prepared
        if self._pass_raw is None or self._used_all or self._used or self._new or prepared.read(self) is None:
            return False
        self._pass_raw = prepared.raw
        return True

    def end_pass(self) -> None:
        """Stop serving from the pass's copy; what was read this pass is the next pass's plan."""
        used, new = self._used, self._new
        self._served = self._by_address = self._lazy = None
        plan = self._plan
        self._exact = (self._prepared, self._pass_raw) if not self._missed and self._pass_raw is not None else None
        if self._used_all:  # every byte of the plan was compared: all of it was used
            if not new:
                self._plan_spare = 0
                return
            used = set(plan)
        if not new:
            # ``used`` holds plan ranges only: as many as the plan, it is the plan.  A steady
            # stack keeps its plan, and so its prepared iovecs.
            if len(used) == len(plan):
                self._plan_spare = 0
                return
            # A pass that read less than the plan holds (the leaf was elsewhere for a moment)
            # keeps it too, unless the plan has held more than was read for PLAN_KEEP passes in
            # a row: re-preparing it cost more than the ranges it would leave out.
            if self._plan_spare < PLAN_KEEP and len(plan) <= len(used) + PLAN_SPARE:
                self._plan_spare += 1
                return
        keys = used | new
        self._plan_spare = 0
        if len(keys) <= PLAN_RANGES and sum(size for _, size in keys) <= PLAN_BYTES:
            self._plan = list(keys)
        else:
            self._plan = []

    def pass_token(self) -> Optional[tuple]:
        """After a pass that read nothing but its plan's one re-read: what stands for its bytes
        (``unchanged_outside`` compares with them); None after any other pass."""
        return self._exact

    def unchanged_outside(self, windows: List[Tuple[Tuple[int, int], int]], token: tuple) -> Optional[List[int]]:
        """Inside a pass: None unless it re-read the same plan as the pass ``token`` stands for
        and every byte of it is the same as then outside ``windows``; otherwise the indices of
        the windows whose bytes changed.  A window ``((address, size), offset)`` is the end of
        one planned range from ``offset`` on (a thread's newest frames).

        Why: a pass whose bytes are the last pass's but for a few frames at the top of some
        stacks gives the last pass's threads but for those; one comparison in C of the
        whole re-read replaces the walk of everything else.  The plan then counts as used."""
        known = self._same_outside(windows, token)
        if known is None:
            return None
        self._used_all = True
        spans = known[2]
        return list(compress(known[4], map(ne, spans(self._pass_raw), spans(token[1]))))

    def same_outside(self, windows: List[Tuple[Tuple[int, int], int]], token: tuple) -> bool:
        """After a pass: whether its re-read is the one ``token`` stands for outside ``windows``
        (``unchanged_outside`` without using the plan: a sampler asks whether a pass it keeps
        stands for an earlier one it keeps too)."""
        return self._same_outside(windows, token) is not None

    def _same_outside(self, windows, token) -> Optional[tuple]:
        """(prepared plan, windows, the windows' spans, the gaps between, their indices, the gaps'
        list, the gap that differed last) of this pass's re-read, when its bytes in the gaps are
        those ``token`` stands for; else None.  Spans and gaps are ``itemgetter`` s of slices:
        each cuts all of its pieces in one call, and two such tuples compare in C (a loop over
        the gaps was a tenth of a steady pass)."""
        raw = self._pass_raw
        prepared = self._prepared
        if token is None or raw is None or token[0] is not prepared:
            return None
        known = self._windows.get(id(windows))
        if known is None or known[0] is not prepared or known[1] is not windows:
            offsets = prepared.where
            spans = []
            for key, offset in windows:
                where = offsets.get(key)
                if where is None or not 0 <= offset <= key[1]:
                    return None
                spans.append((where[0] + offset, where[1]))
            gaps = []
            position = 0
            for start, end in sorted(spans):
                if start < position:
                    return None  # overlapping windows: not what a pass plans
                gaps.append((position, start))
                position = end
            gaps.append((position, len(raw)))
            if len(self._windows) >= MAX_WINDOWS:
                self._windows.clear()
            known = self._windows[id(windows)] = (prepared, windows, _cutter(spans), _cutter(gaps),
                                                  range(len(spans)), gaps, [0, 0])
        old = token[1]
        start, end = hot = known[6]
        if raw[start:end] != old[start:end]:
            return None  # where it differed last time: a pass unlike a kept one mostly differs there
        cut = known[3]
        mine, theirs = cut(raw), cut(old)
        if mine == theirs:
            return known
        hot[:] = next(gap for gap, a, b in zip(known[5], mine, theirs) if a != b)
        return None

    def _served_inexact(self, address: int, size: int) -> Optional[bytes]:
        """A read the plan holds at the same address, but longer (the stack was deeper then):
        served from its first ``size`` bytes, or None."""
        by_address = self._by_address
        if by_address is None:
            by_address = self._by_address = {}
            for key in (self._lazy if self._lazy is not None else self._served):  # (the fallback's: all read)
                known = by_address.get(key[0])
                if known is None or known[1] < key[1]:
                    by_address[key[0]] = key
        key = by_address.get(address)
        if key is None or key[1] < size:
            return None
        self._used.add(key)
        lazy = self._lazy
        if lazy is None:
            return self._served[key][:size]
        start = lazy[key][0]
        return self._pass_raw[start:start + size]

    # -- single reads ---------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        served = self._served
        if served is None:
            return self._read(address, size)
        # served from the pass's copy, and noted for the next plan (inline: a dozen times a sample)
        key = (address, size)
        lazy = self._lazy
        if lazy is not None:
            span = lazy.get(key)
            if span is not None:
                self._used.add(key)
                return self._pass_raw[span[0]:span[1]]
        else:
            data = served.get(key)
            if data is not None:
                self._used.add(key)
                return data
        data = self._served_inexact(address, size)
        if data is not None:
            return data
        if size > 0:
            self._missed = True
        data = self._read(address, size)
        if size > 0:
            self._new.add(key)
        return data

    def _read(self, address: int, size: int) -> bytes:
        if size < 0 or size > MAX_READ or address <= 0:
            raise MemoryReadError(address, size, "refusing an implausible read")
        if size == 0:
            return b""
        if self._use_vm_readv:
            self.read_calls += 1
            if size <= SCRATCH and self._scratch_owner == get_ident():
                self._local.iov_len = self._remote.iov_len = size
                self._remote.iov_base = address
                got = _process_vm_readv(self.pid, self._local_ref, 1, self._remote_ref, 1, 0)
                if got == size:
                    return bytes(self._scratch_view[:size])
            else:
                buffer = libc.create_string_buffer(size)
                local = _IOVec(libc.addressof(buffer), size)
                remote = _IOVec(address, size)
                got = _process_vm_readv(self.pid, libc.byref(local), 1, libc.byref(remote), 1, 0)
                if got == size:
                    return buffer.raw
            if got < 0:
                err = libc.get_errno()
                if err in (errno.ENOSYS, errno.EINVAL) or (err == errno.EPERM and self._mem_usable()):
                    self._use_vm_readv = False
                    return self._read_mem(address, size)
                self._raise(err, address, size)
            raise MemoryReadError(address, size, "short read (%d bytes)" % got)
        return self._read_mem(address, size)

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Read many ranges with as few system calls as the kernel allows (none for ranges
        this pass's copy holds)."""
        served = self._served
        if served is None:
            return self._read_many(requests)
        if type(requests) is not list:
            requests = list(requests)
        lazy = self._lazy
        get = served.get if lazy is None else lazy.get
        try:
            results: List[Optional[bytes]] = [get(r) for r in requests]
        except TypeError:  # a request that is not a tuple (a list): hashable once made one
            requests = [tuple(r) for r in requests]
            results = [get(r) for r in requests]
        if lazy is not None:  # spans in the one re-read: cut out
            raw = self._pass_raw
            results = [raw[span[0]:span[1]] if span is not None else None for span in results]
        if None not in results:  # the steady case: every range repeats one of the last pass's
            self._used.update(requests)
            return results
        used = self._used
        missing = []
        for i, data in enumerate(results):
            if data is not None:
                used.add(requests[i])
            else:
                data = self._served_inexact(*requests[i])
                if data is not None:
                    results[i] = data
                else:
                    missing.append(i)
        if missing:
            if any(requests[i][1] > 0 and requests[i][0] > 0 for i in missing):
                self._missed = True  # not for the (0, 0) a caller puts where there is nothing to read
            fetched = self._read_many([requests[i] for i in missing])
            new = self._new
            for i, data in zip(missing, fetched):
                if data is not None:
                    results[i] = data
                    new.add(requests[i])
        return results

    def _read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Read many ranges with as few system calls as the kernel allows.

        process_vm_readv stops at the first remote range that faults, so on a
        short count the completed prefix is kept, the range that faulted is
        tried alone and the rest go on in the next call.

        The usual case (every range plausible, at most ``IOV_MAX``) costs a few calls into C
        whatever the number of ranges: the remote iovecs packed at once, one local buffer (the
        kernel fills it range after range), the ranges cut out in one comprehension.  Why: a
        dump's batches of a few hundred object heads spent more on packing and cutting in
        Python than the system call took.
        """
        n = len(requests)
        results: List[Optional[bytes]] = [None] * n
        if not self._use_vm_readv:
            for i, (address, size) in enumerate(requests):
                try:
                    results[i] = self._read(address, size)
                except MemoryReadError:
                    pass
            return results
        first = None  # the first batch's call, made already
        if 0 < n <= IOV_MAX:
            addresses, sizes = zip(*requests)
            if min(addresses) > 0 and min(sizes) > 0 and max(sizes) <= MAX_READ:
                first = self._read_vectors(requests, n, sum(sizes))
                if first[0] == len(first[1]):
                    raw = first[1]
                    return [raw[end - size:end] for end, size in zip(accumulate(sizes), sizes)]
        if first is not None:  # one batch of every range, met by the loop below as any batch
            pending = [(i, addresses[i], sizes[i]) for i in range(n)]
        else:
            pending = [(i, a, s) for i, (a, s) in enumerate(requests) if 0 < s <= MAX_READ and a > 0]
        while pending:
            batch, rest = pending[:IOV_MAX], pending[IOV_MAX:]
            n = len(batch)
            if first is not None:
                (got, raw), first = first, None
            else:
                got, raw = self._read_vectors([(address, size) for _, address, size in batch], n,
                                              sum(s for _, _, s in batch))
            if got < 0:
                err = libc.get_errno()
                if err == errno.ESRCH:
                    raise ProcessExitedError("process %d exited" % self.pid)
                if err in (errno.EPERM, errno.ENOSYS, errno.EINVAL) and self._mem_usable():
                    self._use_vm_readv = False
                    return self._read_many(requests)
                if err == errno.EPERM:
                    self._raise(err, batch[0][1], batch[0][2])
                got = 0
            position = done = 0
            for i, _, size in batch:
                if position + size > got:
                    break
                results[i] = raw[position:position + size]
                position += size
                done += 1
            if done < n:
                # The call stopped at the range that faulted: that one is tried alone (it may
                # fault only partway), the ranges after it go on in one batch, so a pass costs
                # one more call per unreadable range, not one per range after it.
                i, address, size = batch[done]
                try:
                    results[i] = self._read(address, size)
                except MemoryReadError:
                    results[i] = None
                rest = batch[done + 1:] + rest
            pending = rest
        return results

    def _read_vectors(self, requests: Sequence[Tuple[int, int]], n: int, total: int) -> Tuple[int, bytes]:
        """One process_vm_readv of ``requests`` (plausible, at most IOV_MAX) into one local
        buffer: (what it returned, the buffer's ``total`` bytes)."""
        remote = (_IOVec * n).from_buffer(bytearray(struct.pack("%dQ" % (2 * n), *chain.from_iterable(requests))))
        self.read_calls += 1
        if total <= SCRATCH and self._scratch_owner == get_ident():
            self._local.iov_len = total
            got = _process_vm_readv(self.pid, self._local_ref, 1, remote, n, 0)
            return got, self._scratch_view[:total].tobytes()
        buffer = libc.create_string_buffer(total)
        got = _process_vm_readv(self.pid, libc.byref(_IOVec(libc.addressof(buffer), total)), 1, remote, n, 0)
        return got, buffer.raw

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
