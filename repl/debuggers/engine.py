"""The engine on a debugger's ``Process``: ``make_target(process)``.

Once ``snapshot.target.Target`` takes a ``Process`` (the seam work), this is
just ``Target(process)``.  Until then ``_ProcessTarget`` is a temporary shim:
the same ``Target`` with the few places that still read ``/proc`` of a pid
(the interpreter's file, thread ids and names, the pause) taken from the
``Process`` instead.  It is deleted when the seam lands.
"""
from __future__ import annotations

import inspect
import os
import time
from typing import Dict, Optional

from snapshot.model import Snapshot


def make_target(process):
    """A ``Target`` reading ``process`` (which the debugger has stopped)."""
    from snapshot.target import Target
    parameters = list(inspect.signature(Target.__init__).parameters)
    if len(parameters) > 1 and parameters[1] != "pid":
        return Target(process)
    return _shim_class()(process)


_SHIM = None


def _shim_class():
    global _SHIM
    if _SHIM is not None:
        return _SHIM
    from snapshot.walk.codecache import CodeCache
    from snapshot.objects import ObjectReader
    from snapshot.osthreads import PthreadTidFinder
    from snapshot.target import Target
    from snapshot.walk.walker import Walker

    class _Tids(PthreadTidFinder):
        """pthread_t -> kernel tid, probing against the Process's thread list (not /proc)."""

        def __init__(self, process):
            super().__init__(process, process.pid)
            self.process = process

        def native_ids(self, thread_ids):
            import snapshot.osthreads as osthreads
            saved = osthreads.task_ids
            osthreads.task_ids = lambda pid: [t.tid for t in self.process.threads()]
            try:
                return super().native_ids(thread_ids)
            finally:
                osthreads.task_ids = saved

    class _NoStates:
        def read(self) -> Dict[int, str]:
            return {}

        def close(self) -> None:
            pass

    class _ProcessTarget(Target):
        def __init__(self, process):
            self.process = process
            self.pid = process.pid
            self.memory = process
            self.interpreter = locate_in(process)
            self.layout = self._layout()
            self.objects = ObjectReader(self.memory, self.layout)
            self.codes = CodeCache(self.memory, self.layout, self.objects, self.interpreter.symbol("PyCode_Type"))
            self.walker = Walker(self.memory, self.layout, self.interpreter.runtime_addr, self.codes)
            self.command_line = tuple(process.command_line())
            self._tids = _Tids(process) if self.walker.ts_native_id is None else None
            self._names = {}
            self._frame_cache = {}
            self._task_states = _NoStates()
            self._interp = None
            self._gil_ptr = None
            self.samples_taken = 0

        def _take(self, with_locals, blocking, max_repr, max_depth, fresh_names) -> Snapshot:
            with self.process.paused() as stopped:
                taken_at = time.time_ns()
                states = {tid: "S" if waiting else "R"
                          for tid, waiting in self.process.in_syscall(stopped).items()}
                threads = self._read_threads(with_locals, max_repr, max_depth, fresh_names, states)
            self.samples_taken += 1
            return Snapshot(self.pid, self.python_version, self.executable, taken_at, tuple(threads),
                            self.command_line)

        def _thread_names(self, interp, threads, fresh) -> Dict[int, Optional[str]]:
            from snapshot.errors import SnapshotError
            try:
                names = self._threading_names(interp, [t.thread_id for t in threads])
            except (SnapshotError, UnicodeDecodeError, ValueError, Exception):  # noqa: BLE001
                names = {}
            for t in threads:
                if names.get(t.thread_id) is None and t.native_id:
                    os_name = self.process.thread_name(t.native_id)
                    if os_name is not None:
                        names[t.thread_id] = os_name
            return names

    _SHIM = _ProcessTarget
    return _SHIM


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def locate_in(process):
    """``discovery.locate`` on a ``Process`` (temporary, with the shim)."""
    from layouts import SUPPORTED_VERSIONS
    from snapshot import binary
    from snapshot.discovery import Interpreter, _candidates, _detect_version, _scan_for_cookie
    from snapshot.errors import InterpreterNotFoundError, NotPythonError, UnsupportedVersionError

    exe = process.executable()
    maps = process.maps()
    mapped_exe = next((m.path for m in maps if m.path.startswith("/") and _same_file(m.path, exe)), exe)
    pid = process.pid
    for mapping in _candidates(maps, mapped_exe):
        try:
            info = binary.load(process.local_path(mapping.path))
        except ValueError:
            continue
        base = 0 if info.elf_type == "ET_EXEC" else mapping.start - mapping.offset - info.first_load_vaddr
        runtime = info.symbols.get("_PyRuntime") or info.pyruntime_section
        if not runtime:
            continue
        runtime_addr = base + runtime
        version, text = _detect_version(process, info, runtime_addr, mapping.path)
        if version[:2] not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionError("Python %s is not supported (process %d)" % (text, pid))
        symbols = tuple((k, base + v) for k, v in info.symbols.items())
        return Interpreter(pid, mapped_exe, mapping.path, base, runtime_addr, version, text, info.build_id,
                           symbols)
    cookie = _scan_for_cookie(process, maps)
    if cookie is not None:
        version, text = cookie[1]
        return Interpreter(pid, mapped_exe, mapped_exe, 0, cookie[0], version, text, "")
    name = os.path.basename(exe or "?")
    if "python" in name:
        raise InterpreterNotFoundError("no CPython runtime found in process %d (%s)" % (pid, exe))
    raise NotPythonError("process %d is not a Python process: it runs %s" % (pid, exe or "?"))
