"""A live target process: discovery once, then snapshots and samples on demand.

``Target`` ties the seams together: a ``MemoryReader`` (live process here),
the ``Interpreter`` found by discovery, the ``Layout`` of its version
(overlaid with the target's own debug offsets from 3.13), the ``Walker`` and
the caches that make the second snapshot cheaper than the first.
"""
from __future__ import annotations

import os
import struct
import time
from typing import Dict, List, Optional, Tuple

from layouts import UnknownLayoutError, table_size, with_debug_offsets

from .codecache import CodeCache
from .discovery import Interpreter, command_line, locate
from .layoutcache import load_layout
from .errors import (CorruptDataError, MemoryReadError, ProcessExitedError, SnapshotError,
                     UnsupportedVersionError)
from .memory import MemoryReader, ProcessMemory
from .model import Frame, Local, Snapshot, ThreadStack
from .objects import ObjectReader
from .osthreads import PthreadTidFinder, TaskStates, task_name
from .waits import is_idle_function
from .pause import not_paused, paused
from .walker import RawThread, Walker

_U64 = struct.Struct("<Q")
#: Seconds a cached thread name stays valid while sampling.
NAME_TTL = 1.0


def attach(pid: int, memory: Optional[MemoryReader] = None) -> "Target":
    return Target(pid, memory)


class Target:
    """One attached process."""

    def __init__(self, pid: int, memory: Optional[MemoryReader] = None):
        self.pid = pid
        self.memory = memory if memory is not None else ProcessMemory(pid)
        self.interpreter: Interpreter = locate(pid, self.memory)
        self.layout = self._layout()
        self.objects = ObjectReader(self.memory, self.layout)
        self.codes = CodeCache(self.memory, self.layout, self.objects, self.interpreter.symbol("PyCode_Type"))
        self.walker = Walker(self.memory, self.layout, self.interpreter.runtime_addr, self.codes)
        self.command_line = tuple(command_line(pid))
        self._tids = PthreadTidFinder(self.memory, pid) if self.walker.ts_native_id is None else None
        self._names: Dict[int, Tuple[float, Optional[str]]] = {}
        self._frame_cache: Dict[Tuple[int, int, str], Frame] = {}
        self._task_states = TaskStates(pid)
        self._interp: Optional[int] = None
        self._gil_ptr: Optional[int] = None
        self.samples_taken = 0

    # -- setup ---------------------------------------------------------------
    def _layout(self):
        version = self.interpreter.version[:2]
        try:
            layout = load_layout(version)
        except UnknownLayoutError:
            raise UnsupportedVersionError("Python %s is not supported" % self.interpreter.version_text) from None
        if layout.features.debug_offsets:
            name = layout.features.debug_offsets
            raw = self.memory.read(self.interpreter.runtime_addr, table_size(name))
            try:
                layout = with_debug_offsets(layout, raw)
            except ValueError as e:
                raise CorruptDataError("the target's debug offsets are unusable: %s" % e) from None
        return layout

    @property
    def python_version(self) -> str:
        return self.interpreter.version_text

    @property
    def executable(self) -> str:
        return self.interpreter.executable

    def close(self) -> None:
        self._task_states.close()
        close = getattr(self.memory, "close", None)
        if close:
            close()

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- snapshots -------------------------------------------------------------
    def snapshot(self, locals: bool = False, blocking: bool = True, max_repr: int = 1024,
                 max_depth: int = 6) -> Snapshot:
        """Every thread's stack, optionally with locals, in one consistent read."""
        return self._take(locals, blocking, max_repr, max_depth, fresh_names=True)

    def sample(self, blocking: bool = True) -> Snapshot:
        """The hot path: stacks only, with cached code objects and thread names."""
        return self._take(False, blocking, 0, 0, fresh_names=False)

    def _take(self, with_locals: bool, blocking: bool, max_repr: int, max_depth: int,
              fresh_names: bool) -> Snapshot:
        # Idle threads: without pausing, the run state read just before the
        # walk; with pausing, whether each thread was stopped inside a system
        # call (read while paused, see TaskStates.in_syscall).
        states = {} if blocking else self._task_states.read()
        if not blocking and not states and not os.path.exists("/proc/%d" % self.pid):
            raise ProcessExitedError("process %d exited" % self.pid)
        pause = paused if blocking else not_paused
        # Without pausing, a read can race the target (a frame popped between two
        # reads); one immediate retry turns most such torn reads into a good sample.
        attempts = 1 if blocking else 2
        for attempt in range(attempts):
            try:
                with pause(self.pid) as stopped:
                    taken_at = time.time_ns()
                    if stopped:
                        states = {tid: "S" if waiting else "R"
                                  for tid, waiting in self._task_states.in_syscall(stopped).items()}
                    threads = self._read_threads(with_locals, max_repr, max_depth, fresh_names, states)
                break
            except (MemoryReadError, CorruptDataError) as e:
                if not os.path.exists("/proc/%d" % self.pid):
                    raise ProcessExitedError("process %d exited while being read" % self.pid) from None
                if attempt + 1 == attempts:
                    raise e
        self.samples_taken += 1
        if self.samples_taken % 256 == 0:
            self.codes.revalidate()
        return Snapshot(self.pid, self.python_version, self.executable, taken_at, tuple(threads),
                        self.command_line)

    def _read_threads(self, with_locals: bool, max_repr: int, max_depth: int, fresh_names: bool,
                      states: Dict[int, str]) -> List[ThreadStack]:
        walker = self.walker
        if self._interp is None:
            self._interp = walker.interpreter_addr()
        interp = self._interp
        head, holder = self._head_and_gil(interp)
        try:
            tstates = walker.thread_states(interp, head)
        except CorruptDataError:
            self._interp = self._gil_ptr = None  # a new interpreter state: find it again
            raise
        raw_threads = walker.walk_threads(tstates, with_locals)
        if self._tids is not None:
            native = self._tids.native_ids([t.thread_id for t in raw_threads])
            for t in raw_threads:
                t.native_id = native.get(t.thread_id)
        names = self._thread_names(interp, raw_threads, fresh_names)
        result = []
        for raw in raw_threads:
            frames = tuple(self._frame(f, with_locals, max_repr, max_depth) for f in raw.frames)
            state = states.get(raw.native_id) if raw.native_id else None
            idle = state != "R" if state is not None else False
            if frames and not idle and is_idle_function(frames[0].function, frames[0].filename):
                idle = True
            result.append(ThreadStack(raw.thread_id, raw.native_id, names.get(raw.thread_id),
                                      holder == raw.tstate_addr, idle, frames))
        return result

    # -- frames and locals ---------------------------------------------------------
    def _frame(self, raw, with_locals: bool, max_repr: int, max_depth: int) -> Frame:
        code = raw.code
        function = code.function
        if code.needs_first_local and raw.localsplus:
            function = self._method_name(code, raw.localsplus[0]) or function
        if not with_locals:
            key = (code.address, raw.line, function)
            frame = self._frame_cache.get(key)
            if frame is None:
                frame = Frame(function, code.filename, raw.line)
                if len(self._frame_cache) > 200_000:
                    self._frame_cache.clear()
                self._frame_cache[key] = frame
            return frame
        return Frame(function, code.filename, raw.line, self._locals(raw, max_repr, max_depth),
                     globals_address=raw.globals_addr or None)

    def _method_name(self, code, first: int) -> Optional[str]:
        if not first:
            return None
        try:
            if code.slot_names[0] == "self":
                type_addr = self.objects.type_addr(first)
            else:
                type_addr = first
            name = self.objects.type_name(type_addr)
        except (SnapshotError, UnicodeDecodeError, struct.error, ValueError):
            return None
        return "%s.%s" % (name.rsplit(".", 1)[-1], code.name) if name else None

    def _locals(self, raw, max_repr: int, max_depth: int) -> Tuple[Local, ...]:
        code = raw.code
        if raw.localsplus is None:
            return ()
        mask = ~self.layout.features.stackref_tag_mask & 0xFFFFFFFFFFFFFFFF
        tagged = self.layout.features.stackref_tag_mask
        result = []
        for index, (name, kind, value) in enumerate(zip(code.slot_names, code.slot_kinds, raw.localsplus)):
            if kind == "hidden":
                continue
            if tagged and value & 3 == 3:
                # A tagged small int (3.14+ stack references): the value is in the pointer.
                result.append(Local(name, repr(value >> 2), 0, index < code.nargs))
                continue
            address = value & mask
            if not address:
                continue
            try:
                if kind in ("cell", "free") and self.objects.kind(address) == "cell":
                    address = _U64.unpack(self.memory.read(address + self.layout.PyCellObject.ob_ref, 8))[0]
                    if not address:
                        continue
                text = self.objects.repr(address, max_repr, max_depth)
            except (SnapshotError, UnicodeDecodeError, struct.error, ValueError, RecursionError) as e:
                text = "<unreadable: %s>" % e
            result.append(Local(name, text, address, index < code.nargs))
        return tuple(result)

    # -- GIL and names -------------------------------------------------------------
    def _head_and_gil(self, interp: int) -> Tuple[int, int]:
        """The first thread state and the GIL holder's thread state, in one batched read.

        3.8-3.11 keep the holder in ``_PyRuntime.gilstate.tstate_current``;
        3.12+ keep a GIL per interpreter whose ``last_holder`` is only
        meaningful while ``locked`` is set.
        """
        layout = self.layout
        gil = layout._gil_runtime_state
        requests = [(interp + self.walker.interp_threads, 8)]
        if layout.features.gil == "runtime":
            runtime = self.interpreter.runtime_addr
            rt = layout._PyRuntimeState
            requests += [(runtime + rt.gilstate_tstate_current, 8), (runtime + rt.ceval_gil + gil.locked, 4)]
        else:
            if self._gil_ptr is None:
                self._gil_ptr = _U64.unpack(self.memory.read(interp + layout.PyInterpreterState.ceval_gil, 8))[0]
            if self._gil_ptr:
                requests.append((self._gil_ptr, gil.locked + 4))
        values = self.memory.read_many(requests)
        if values[0] is None:
            raise MemoryReadError(requests[0][0], 8, "thread list head")
        head = _U64.unpack(values[0])[0]
        holder = 0
        if layout.features.gil == "runtime":
            if values[1] and values[2] and struct.unpack("<i", values[2])[0]:
                holder = _U64.unpack(values[1])[0]
        elif len(values) > 1 and values[1]:
            if struct.unpack_from("<i", values[1], gil.locked)[0]:
                holder = _U64.unpack_from(values[1], gil.last_holder)[0]
        return head, holder

    def _thread_names(self, interp: int, threads: List[RawThread], fresh: bool) -> Dict[int, Optional[str]]:
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
                os_name = task_name(self.pid, t.native_id)
                if os_name is not None:
                    names[t.thread_id] = os_name
            self._names[t.thread_id] = (now, names.get(t.thread_id))
        return names

    def _threading_names(self, interp: int, thread_ids: List[int]) -> Dict[int, Optional[str]]:
        """Names from ``threading._active`` (ident -> Thread), read from memory."""
        layout = self.layout
        interp_struct = layout.PyInterpreterState
        field = "imports_modules" if "imports_modules" in interp_struct else "modules"
        modules = _U64.unpack(self.memory.read(interp + interp_struct.fields[field].offset, 8))[0]
        if not modules:
            return {}
        threading = self.objects.dict_get(modules, "threading")
        if not threading:
            return {}
        active = self.objects.getattr(threading, "_active")
        if not active:
            return {}
        names: Dict[int, Optional[str]] = {}
        for thread_id in thread_ids:
            thread = self.objects.dict_get(active, thread_id)
            if not thread:
                continue
            name_addr = self.objects.getattr(thread, "_name")
            if name_addr:
                names[thread_id] = self.objects.string(name_addr, 1024)
        return names
