"""Facts about a target's threads besides their stacks: GIL holder, names, OS ids, idleness.

Kept apart from the frame builder and from ``Target`` (the composition root)
because each asks different things of memory: the thread-list head and GIL
words in one batched read, names from ``threading._active`` (and the OS's
``comm`` as a fallback), OS thread ids before 3.11 from glibc's struct
pthread, and, inside a PID namespace, the mapping of the target's own thread
ids to ours so run states (keyed by our ids) apply.
"""
from __future__ import annotations

import struct
import time

from .errors import MemoryReadError, SnapshotError
from .waits import is_idle_function
from .process.base import SYSCALL_FUTEX, SYSCALL_RESTART, SYSCALL_UNKNOWN
from .process.pthread import PthreadTidFinder

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


#: facts.gil -> where the GIL holder is read: "runtime" (_PyRuntime.gilstate.tstate_current, with
#: the GIL's ``locked``), "interpreter" (the interpreter's GIL struct), "variable" (2.7/3.6: the
#: ``_PyThreadState_Current`` variable, NULL while the GIL is released).
_GIL_SOURCE = {"runtime": "runtime", "interpreter": "interpreter", "thread_state_current": "variable"}
_U64 = struct.Struct("<Q")
#: Calls a thread waiting on a futex word sits in (a timed wait resumed after a stop is a restart).
_FUTEX_CALLS = (SYSCALL_FUTEX, SYSCALL_RESTART)
#: Calls that wait for the GIL when their first argument is a word inside it: futex, its restart,
#: and a blocked call whose number the source lost (lldb, no orig_rax) but whose arguments it has.
_GIL_WAIT_CALLS = _FUTEX_CALLS + (SYSCALL_UNKNOWN,)
#: Seconds a cached thread name stays valid while sampling.
NAME_TTL = 1.0


class ThreadFacts:
    """GIL holder, names and OS ids of one process's threads (cached across samples)."""

    def __init__(self, process, layout, walker, runtime_addr: int, objects,
                 current_tstate_addr: Optional[int] = None, symbols: Optional[Dict[str, int]] = None):
        self.process = process
        #: The interpreter binary's symbols (absolute): 2.7/3.6 find their GIL's words by them.
        self.symbols = symbols or {}
        #: Address of ``_PyThreadState_Current`` (2.7/3.6 only).
        self.current_tstate_addr = current_tstate_addr
        self.layout = layout
        self.walker = walker
        self.runtime_addr = runtime_addr
        self.objects = objects
        self._pthreads = (PthreadTidFinder(process, self._target_tids)
                          if walker.ts_native_id is None else None)
        self._names: Dict[int, Tuple[float, Optional[str]]] = {}
        self._gil_ptrs: Dict[int, int] = {}  # interpreter -> its GIL (3.12+: one per interpreter)

    def forget(self) -> None:
        """Drop cached addresses (a new interpreter state, or a read failed)."""
        self._gil_ptrs = {}

    # -- OS thread ids ----------------------------------------------------------------
    def _tid_map(self) -> Dict[int, int]:
        get = getattr(self.process, "tid_map", None)
        return get() if get is not None else {}

    def _target_tids(self) -> List[int]:
        mapping = self._tid_map()
        if mapping:
            return sorted(mapping)
        ids = getattr(self.process, "thread_ids", None)
        return ids() if ids is not None else [t.tid for t in self.process.threads()]

    def fill_native_ids(self, raw_threads) -> None:
        """Set each raw thread's ``native_id`` to our OS id of it (mapping namespace ids)."""
        if self._pthreads is not None:
            native = self._pthreads.native_ids([t.thread_id for t in raw_threads])
            for t in raw_threads:
                t.native_id = native.get(t.thread_id)
        mapping = self._tid_map()
        if mapping:
            for t in raw_threads:
                if t.native_id:
                    t.native_id = mapping.get(t.native_id, t.native_id)

    # -- idleness -------------------------------------------------------------------------
    @staticmethod
    def is_idle(native_id: Optional[int], states: Dict[int, str], frames,
                calls: Optional[Dict[int, Tuple[int, Tuple[int, ...]]]] = None,
                gil: Optional[Tuple[int, int]] = None, holds_gil: bool = False) -> bool:
        """Whether a thread waits for something other than the CPU.

        A thread that wants to run Python is active: the GIL holder, and a
        thread blocked in ``futex`` on a word inside the GIL (its mutex or
        condition variable: waiting to take it, or to hand it over; a timed wait
        that one of our pauses interrupted resumes as ``restart_syscall`` with
        the same first argument).  A
        thread blocked in any other system call is idle, as is one the OS
        reports not running or whose innermost function is a known wait.
        """
        if holds_gil:
            return False
        call = calls.get(native_id) if calls and native_id else None
        if call is not None:
            number, args = call
            if number < 0:
                idle = False
            elif number in _GIL_WAIT_CALLS and gil is not None and args and gil[0] <= args[0] < gil[1]:
                return False
            else:
                return True
        else:
            state = states.get(native_id) if native_id else None
            idle = state != "R" if state is not None else False
        if frames and not idle and is_idle_function(frames[0].function, frames[0].filename):
            idle = True
        return idle

    def gil_span(self, interp: int) -> Optional[Tuple[int, int]]:
        """[start, end) of the interpreter's ``_gil_runtime_state`` (its mutex and conditions)."""
        layout = self.layout
        source = _GIL_SOURCE[layout.facts.gil]
        if source == "variable" or "_gil_runtime_state" not in layout.structs:
            return self._static_gil_span()  # 2.7/3.6: statics of ceval.c, by their symbols
        size = layout._gil_runtime_state.size
        if source == "runtime":
            start = self.runtime_addr + layout._PyRuntimeState.ceval_gil
        else:
            start = self._gil_ptrs.get(interp)
            if start is None:
                start = _U64.unpack(self.process.read(interp + layout.PyInterpreterState.ceval_gil, 8))[0]
                self._gil_ptrs[interp] = start
        return (start, start + size) if start else None

    def _static_gil_span(self) -> Optional[Tuple[int, int]]:
        """2.7: the semaphore ``interpreter_lock`` points to; 3.6: ceval_gil.h's mutexes and
        conditions (None on a stripped build, whose symbols do not say where)."""
        facts = self.layout.facts
        if facts.gil_lock_pointer:
            pointer = self.symbols.get(facts.gil_lock_pointer)
            if not pointer:
                return None
            lock = self._gil_ptrs.get(-1)
            if lock is None:
                lock = _U64.unpack(self.process.read(pointer, 8))[0]
                if lock:   # allocated once, at the first thread's start (0 until then: read again)
                    self._gil_ptrs[-1] = lock
            return (lock, lock + facts.gil_lock_size) if lock else None
        if facts.gil_words:
            spans = [(self.symbols.get(name), size) for name, size in facts.gil_words]
            if not all(addr for addr, _ in spans):
                return None
            return min(addr for addr, _ in spans), max(addr + size for addr, size in spans)
        return None

    # -- GIL ---------------------------------------------------------------------------------
    def head_and_gil(self, interp: int) -> Tuple[int, int]:
        """The first thread state and the GIL holder's thread state, in one batched read.

        3.8-3.11 keep the holder in ``_PyRuntime.gilstate.tstate_current``;
        3.12+ keep a GIL per interpreter whose ``last_holder`` is only
        meaningful while ``locked`` is set.
        """
        layout = self.layout
        source = _GIL_SOURCE[layout.facts.gil]
        requests = [(interp + self.walker.interp_threads, 8)]
        if source == "variable":
            if self.current_tstate_addr:
                requests.append((self.current_tstate_addr, 8))
            values = self.process.read_many(requests)
            if values[0] is None:
                raise MemoryReadError(requests[0][0], 8, "thread list head")
            holder = _U64.unpack(values[1])[0] if len(values) > 1 and values[1] else 0
            return _U64.unpack(values[0])[0], holder
        gil = layout._gil_runtime_state
        if source == "runtime":
            rt = layout._PyRuntimeState
            requests += [(self.runtime_addr + rt.gilstate_tstate_current, 8),
                         (self.runtime_addr + rt.ceval_gil + gil.locked, 4)]
        else:
            gil_ptr = self._gil_ptrs.get(interp)
            if gil_ptr is None:
                gil_ptr = _U64.unpack(self.process.read(interp + layout.PyInterpreterState.ceval_gil, 8))[0]
                self._gil_ptrs[interp] = gil_ptr
            if gil_ptr:
                requests.append((gil_ptr, gil.locked + 4))
        values = self.process.read_many(requests)
        if values[0] is None:
            raise MemoryReadError(requests[0][0], 8, "thread list head")
        head = _U64.unpack(values[0])[0]
        holder = 0
        if source == "runtime":
            if values[1] and values[2] and struct.unpack("<i", values[2])[0]:
                holder = _U64.unpack(values[1])[0]
        elif len(values) > 1 and values[1]:
            if struct.unpack_from("<i", values[1], gil.locked)[0]:
                holder = _U64.unpack_from(values[1], gil.last_holder)[0]
        return head, holder

    # -- names -------------------------------------------------------------------------------
    def names(self, interp: int, threads, fresh: bool) -> Dict[int, Optional[str]]:
        now = time.monotonic()
        if not fresh and all(t.thread_id in self._names and now - self._names[t.thread_id][0] < NAME_TTL
                             for t in threads):
            return {t.thread_id: self._names[t.thread_id][1] for t in threads}
        names: Dict[int, Optional[str]] = {}
        try:
            names = self._threading_names(interp, [t.thread_id for t in threads])
        except (SnapshotError, UnicodeDecodeError, struct.error, ValueError):
            names = {}
        for t in threads:
            if names.get(t.thread_id) is None and t.native_id:
                os_name = self.process.thread_name(t.native_id)
                if os_name is not None:
                    names[t.thread_id] = os_name
            self._names[t.thread_id] = (now, names.get(t.thread_id))
        return names

    def _threading_names(self, interp: int, thread_ids: List[int]) -> Dict[int, Optional[str]]:
        """Names from ``threading._active`` (ident -> Thread), read from memory."""
        interp_struct = self.layout.PyInterpreterState
        field = "imports_modules" if "imports_modules" in interp_struct else "modules"
        modules = _U64.unpack(self.process.read(interp + interp_struct.fields[field].offset, 8))[0]
        if not modules:
            return {}
        threading = self.objects.dict_get(modules, "threading")
        if not threading:
            return {}
        active = self.objects.getattr(threading, "_active")
        if not active:
            return {}
        # One pass over the dict (a lookup per thread would scan it once per thread: quadratic).
        wanted = set(thread_ids)
        by_ident: Dict[int, int] = {}
        pairs = self.objects.dict_items(active)
        self.objects.hold_heads(k for k, _ in pairs)  # every key int in one read
        try:
            for key_addr, value_addr in pairs:
                try:
                    ident = self.objects.int_value(key_addr)
                except (SnapshotError, ValueError, struct.error):
                    continue
                if ident in wanted:
                    by_ident[ident] = value_addr
        finally:
            self.objects.release_heads()
        threads = [by_ident[t] for t in thread_ids if by_ident.get(t)]
        name_of = self.objects.getattr_many(threads, self.layout.facts.thread_name_attr)
        addrs = [a for a in name_of.values() if a]
        texts = dict(zip(addrs, self.objects.strings(addrs, 1024)))
        names: Dict[int, Optional[str]] = {}
        for thread_id in thread_ids:
            name_addr = name_of.get(by_ident.get(thread_id, 0))
            if name_addr and texts.get(name_addr) is not None:
                names[thread_id] = texts[name_addr]
        return names
