"""Taking a snapshot to save: the walk, a bounded exploration of locals and globals, and the
stacks, all inside one pause, recorded as the memory a ``SavedSnapshot`` holds.

Why one pause: the memory saved must be one consistent moment, so that the
engine run over it offline (``print payload['items'][3].name``) sees what it
would have seen live.  What to explore beyond the walk is ``explore``.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from layouts.records import asdict, dataclass

from ..errors import SnapshotError
from ..process.image import RecordingProcess
from .explore import Explorer
from .fileformat import SavedSnapshot

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, List, Optional


@dataclass(frozen=True)
class ExploreLimits:
    """How far beyond the walk a capture reads (every frame's locals, then its globals)."""

    #: Levels below each local (payload -> ['items'] -> [3] -> .name is 3).
    depth: int = 4
    #: Levels below each frame's globals dict (handler -> .requests -> [0] -> .path).
    globals_depth: int = 4
    #: Objects visited at most.
    max_objects: int = 40_000
    #: New remote bytes recorded at most by the exploration.
    max_bytes: int = 48 << 20
    #: repr() arguments ``print`` uses by default: each visited value renders exactly offline.
    print_max_repr: int = 8192
    print_depth: int = 16
    #: Bytes of each thread's stack saved above its stack pointer (native unwinding),
    #: and of all stacks together.
    stack_window: int = 1 << 20
    stacks_total: int = 64 << 20
    #: Seconds of exploration at most (the target stays paused meanwhile).
    max_seconds: float = 5.0


def capture(process, locals: bool = True, max_repr: int = 1024, limits: ExploreLimits = ExploreLimits(),
            source: str = "live") -> SavedSnapshot:
    """Take one snapshot of ``process`` and everything needed to study it offline.

    The walk, the exploration of locals and globals and the stack windows all
    happen inside one pause, so the memory saved is one consistent moment.
    """
    from ..target import Target

    started = time.monotonic()
    recorder = CaptureRecorder(process)
    target = Target(recorder)
    stats: Dict[str, Any] = {}
    with recorder.paused():
        paused_at = time.monotonic()
        snap, with_tasks = _take(target, locals, max_repr)
        walked = recorder.unique_bytes
        if locals:
            Explorer(target, recorder, limits, stats).run(snap)
        _capture_stacks(recorder, limits.stack_window, limits.stacks_total)
        native = _capture_native(recorder)
        paused_seconds = time.monotonic() - paused_at
    image = recorder.image()
    meta = image.to_dict()
    meta.pop("segments", None)
    info = {"locals": bool(locals), "tasks": with_tasks, "max_repr": max_repr, "source": source, "saved_at_ns": time.time_ns(),
            "capture_seconds": round(time.monotonic() - started, 4), "paused_seconds": round(paused_seconds, 4),
            "native_threads": native, "walk_bytes": walked,
            "recorded_bytes": recorder.unique_bytes, "limits": asdict(limits), "explore": stats,
            "interpreter": {"binary_path": target.interpreter.binary_path, "build_id": target.interpreter.build_id,
                            "runtime_addr": target.interpreter.runtime_addr,
                            "version": target.interpreter.version_text}}
    return SavedSnapshot(snap, meta, image.segments, _binary_facts(process, target), info)


def _take(target, locals: bool, max_repr: int):
    """The snapshot with asyncio tasks when the engine can read them (else without)."""
    try:
        return target.snapshot(locals=locals, max_repr=max_repr, tasks=True), True
    except TypeError:          # an engine without asyncio tasks
        pass
    except SnapshotError:      # tasks unreadable: the stacks are still worth saving
        pass
    return target.snapshot(locals=locals, max_repr=max_repr), False


def _binary_facts(process, target) -> List[Dict[str, Any]]:
    """Discovery's facts for every file it may consider (libpython and the executable)."""
    from .. import binary
    from ..discovery import candidate_files
    out = []
    try:
        candidates = candidate_files(process)
    except SnapshotError:
        return out
    for mapped in candidates:
        try:
            info = binary.load(mapped.local_path)
        except ValueError:
            continue
        data = asdict(info)
        data["target_path"] = mapped.path
        if not data.get("build_id"):
            data["build_id"] = mapped.build_id
        out.append(data)
    return out


def _capture_stacks(recorder, window: int, total: int) -> None:
    """Each paused thread's stack from its stack pointer up (bounded), in one batched read."""
    if window <= 0:
        return
    maps = recorder.maps()
    requests = []
    for tid, regs in list(recorder.recorded_registers().items()):
        sp = regs.sp
        if not sp:
            continue
        for m in maps:
            if m.start <= sp < m.end:
                start = max(m.start, (sp - 256) & ~0xF)
                size = min(m.end, sp + window) - start
                if size > total:
                    break
                total -= size
                requests.append((start, size))
                break
    if requests:
        try:
            recorder.read_many(requests)
        except SnapshotError:
            pass


def _capture_native(recorder) -> int:
    """Unwind every paused thread's C stack once, so what the unwinder reads (stacks beyond
    the window, anonymous code) is in the file too; returns how many threads unwound."""
    from ..process.base import REGISTERS
    tids = list(recorder.recorded_registers())
    if not tids or REGISTERS not in recorder.capabilities:
        return 0
    try:
        from ..native import native_stacks
        return sum(1 for frames in native_stacks(recorder, tids).values() if frames)
    except Exception:  # noqa: BLE001 - native frames are a bonus: never fail a save over them
        return 0


_PAGE = 4096
_PAGE_MASK = _PAGE - 1
#: Reads up to this size are served from the page cache while paused; pages kept at most (64 MiB).
_CACHED_READ = 64 << 10
_MAX_PAGES = 16384


class CaptureRecorder(RecordingProcess):
    """Records what was asked for; while paused, serves it from whole pages read in
    batches (the memory cannot change then), so the exploration's thousands of
    small reads cost a few hundred system calls."""

    def __init__(self, inner):
        super().__init__(inner)
        self._held = None
        self._seen = set()
        self.unique_bytes = 0
        self._pages: Dict[int, Optional[bytes]] = {}

    def _count(self, address, size):
        key = (address, size)
        if key not in self._seen:
            self._seen.add(key)
            self.unique_bytes += size

    def _cached(self, address: int, size: int) -> Optional[bytes]:
        if self._held is None or not 0 < size <= _CACHED_READ or address <= 0:
            return None
        first, last = address & ~_PAGE_MASK, (address + size - 1) & ~_PAGE_MASK
        pages = range(first, last + _PAGE, _PAGE)
        missing = [p for p in pages if p not in self._pages]
        if missing:
            if len(self._pages) + len(missing) > _MAX_PAGES:
                return None
            for page, data in zip(missing, self.inner.read_many([(p, _PAGE) for p in missing])):
                self._pages[page] = data if data is not None and len(data) == _PAGE else None
        chunks = [self._pages[p] for p in pages]
        if any(c is None for c in chunks):
            return None      # at a mapping's edge: read exactly what was asked
        joined = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        offset = address - first
        return joined[offset:offset + size]

    def read(self, address, size):
        data = self._cached(address, size)
        if data is None:
            data = self.inner.read(address, size)
        self._pieces.append((address, data))
        self._count(address, len(data))
        return data

    def read_many(self, requests):
        results = [self._cached(a, n) for a, n in requests]
        misses = [i for i, r in enumerate(results) if r is None]
        if misses:
            for i, data in zip(misses, self.inner.read_many([requests[i] for i in misses])):
                results[i] = data
        for (address, _), data in zip(requests, results):
            if data:
                self._pieces.append((address, data))
                self._count(address, len(data))
        return results

    def recorded_registers(self):
        return dict(self._registers)

    @contextmanager
    def paused(self):
        if self._held is not None:
            yield list(self._held)
            return
        with super().paused() as stopped:
            self._pages.clear()          # read before the pause: may have changed
            self._held = list(stopped)
            try:
                yield stopped
            finally:
                self._held = None
                self._pages.clear()
