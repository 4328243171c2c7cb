"""Snapshot files: one stopped moment of a process, readable later on another machine.

Why: an on-call engineer captures a wedged server once (``pyspy-snapshot save``)
and studies it afterwards, or hands it to someone else, without the process,
its core, or its binaries.  The file holds the ``Snapshot`` (stacks, locals'
reprs) *and* the remote memory the walk read plus a bounded exploration of
every frame's locals (``capture.explore``), so ``print payload['items'][3].name``
works offline through the normal engine: opening a file gives a
``SavedProcess`` (an ``ImageProcess``: no LIVE, no PAUSABLE) and the stored
snapshot.

Layout (all little-endian)::

    header   MAGIC (8 bytes) | format version u16 | compression u8 | 0 u8 |
             crc32 of the compressed body u32 | body length u64
    body     compressed (zlib or lzma): metadata length u32 | metadata JSON | memory blob

The metadata holds the snapshot's ``to_dict()``, the image's maps, files,
threads, registers and thread facts, the interpreter binaries' facts that
discovery needs (build-id, symbol offsets, version: the file opens without the
binaries), and ``[address, offset, length]`` of each memory segment in the
blob.  A file of a newer format, a damaged or truncated file, or one that is
not a snapshot file at all is a typed one-line error with a hint.
"""
from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import SnapshotError
from .model import Snapshot

MAGIC = b"PYSPYSNP"
#: Version of the file layout above (not of the snapshot's own ``to_dict`` form).
FORMAT_VERSION = 1
ZLIB, LZMA = 1, 2
COMPRESSIONS = {"zlib": ZLIB, "lzma": LZMA}
_HEADER = struct.Struct("<8sHBBIQ")
_U32 = struct.Struct("<I")
#: Largest body accepted (a damaged length must not make us allocate terabytes).
MAX_BODY = 4 << 30
#: Extension the front ends suggest.
EXTENSION = ".pyspy"


# ---------------------------------------------------------------------------- errors
class SnapshotFileError(SnapshotError):
    """A snapshot file that cannot be read."""

    exit_code = 9
    hint = "pass a file written by `pyspy-snapshot save`"


class NotSnapshotFileError(SnapshotFileError):
    hint = "this is not a pyspy-repl snapshot file; write one with `pyspy-snapshot save --pid PID -o FILE`"


class SnapshotFileVersionError(SnapshotFileError):
    hint = "the file was written by a newer pyspy-repl: open it with that version (or newer)"


class CorruptSnapshotFileError(SnapshotFileError):
    hint = "the file is truncated or damaged (an interrupted copy?); copy it again or save a new one"


class SnapshotFileWriteError(SnapshotFileError):
    hint = "check that the output directory exists and is writable, and that the disk has room"


# ---------------------------------------------------------------------------- the file's content
@dataclass
class SavedSnapshot:
    """What a snapshot file holds, in memory."""

    snapshot: Snapshot
    image: Dict[str, Any]                       # ImageProcess.to_dict() without "segments"
    segments: List[Tuple[int, bytes]]
    binaries: List[Dict[str, Any]] = field(default_factory=list)   # binary.BinaryInfo fields
    #: How the snapshot was taken: locals, max_repr, source, exploration limits and counts.
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def has_locals(self) -> bool:
        return bool(self.info.get("locals"))

    def process(self) -> "SavedProcess":
        """The memory, threads and registers as a read-only ``Process`` for the engine."""
        try:
            return SavedProcess.from_saved(self)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as e:
            raise CorruptSnapshotFileError("the snapshot file's process image is damaged: %s: %s"
                                           % (type(e).__name__, e)) from None

    def snapshot_for(self, locals: bool, max_repr: int, tasks: bool = False) -> Snapshot:
        """The stored snapshot as ``Target.snapshot(locals, max_repr, tasks)`` would have given it."""
        snap = self.snapshot
        if not tasks and getattr(snap, "tasks", ()):
            import dataclasses
            snap = dataclasses.replace(snap, tasks=())
        saved_max = int(self.info.get("max_repr") or 0)
        if not locals or not self.has_locals:
            return _replace_frames(snap, lambda f: f.without_locals())
        if saved_max and max_repr < saved_max:
            # reprs are cut as a prefix: a shorter cut of the stored text is what a
            # smaller max_repr would have read
            from .objects import cut
            return _replace_frames(snap, lambda f: _cut_locals(f, cut, max(4, max_repr)))
        return snap

    # -- bytes -----------------------------------------------------------------
    def to_bytes(self, compression: str = "zlib", level: int = 6) -> bytes:
        blob = io.BytesIO()
        table = []
        for address, data in self.segments:
            table.append([address, blob.tell(), len(data)])
            blob.write(data)
        meta = {"format": FORMAT_VERSION, "snapshot": self.snapshot.to_dict(), "image": self.image,
                "segments": table, "binaries": self.binaries, "info": self.info}
        text = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        body = _U32.pack(len(text)) + text + blob.getvalue()
        kind = COMPRESSIONS.get(compression)
        if kind is None:
            raise ValueError("unknown compression %r (one of %s)" % (compression, ", ".join(COMPRESSIONS)))
        if kind == ZLIB:
            packed = zlib.compress(body, level)
        else:
            import lzma
            packed = lzma.compress(body, preset=min(max(level, 0), 9))
        return _HEADER.pack(MAGIC, FORMAT_VERSION, kind, 0, zlib.crc32(packed), len(packed)) + packed

    @classmethod
    def from_bytes(cls, raw: bytes, name: str = "snapshot file") -> "SavedSnapshot":
        if len(raw) < len(MAGIC) or raw[:len(MAGIC)] != MAGIC:
            raise NotSnapshotFileError("%s is not a pyspy-repl snapshot file (no %r header)"
                                       % (name, MAGIC.decode()))
        if len(raw) < _HEADER.size:
            raise CorruptSnapshotFileError("%s is truncated: %d bytes, shorter than its header" % (name, len(raw)))
        _, version, kind, _, crc, length = _HEADER.unpack_from(raw, 0)
        if version > FORMAT_VERSION:
            raise SnapshotFileVersionError("%s has snapshot file format %d; this pyspy-repl reads up to %d"
                                           % (name, version, FORMAT_VERSION))
        if version < 1:
            raise CorruptSnapshotFileError("%s has an invalid format version %d" % (name, version))
        packed = raw[_HEADER.size:]
        if len(packed) < length:
            raise CorruptSnapshotFileError("%s is truncated: %d of %d bytes" % (name, len(raw), _HEADER.size + length))
        packed = packed[:length]
        if zlib.crc32(packed) != crc:
            raise CorruptSnapshotFileError("%s is damaged: checksum mismatch" % name)
        try:
            if kind == ZLIB:
                body = zlib.decompress(packed)
            elif kind == LZMA:
                import lzma
                body = lzma.decompress(packed)
            else:
                raise CorruptSnapshotFileError("%s uses an unknown compression (%d)" % (name, kind))
        except (zlib.error, EOFError, ValueError, MemoryError) as e:
            if isinstance(e, SnapshotFileError):
                raise
            raise CorruptSnapshotFileError("%s is damaged: %s" % (name, e)) from None
        except Exception as e:  # noqa: BLE001 - lzma.LZMAError and kin
            raise CorruptSnapshotFileError("%s is damaged: %s" % (name, e)) from None
        try:
            return cls._decode(body, name)
        except SnapshotFileError:
            raise
        except SnapshotError as e:   # the snapshot's own form is newer (model.from_dict)
            raise SnapshotFileVersionError("%s: %s" % (name, e)) from None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError, RecursionError,
                struct.error) as e:
            raise CorruptSnapshotFileError("%s is damaged: %s: %s" % (name, type(e).__name__, e)) from None

    @classmethod
    def _decode(cls, body: bytes, name: str) -> "SavedSnapshot":
        (length,) = _U32.unpack_from(body, 0)
        start = _U32.size + length
        if start > len(body):
            raise CorruptSnapshotFileError("%s is damaged: metadata runs past the end" % name)
        meta = json.loads(body[_U32.size:start].decode("utf-8"))
        if not isinstance(meta, dict):
            raise CorruptSnapshotFileError("%s is damaged: metadata is not an object" % name)
        blob = memoryview(body)[start:]
        segments = []
        for address, offset, size in meta["segments"]:
            if offset < 0 or size < 0 or offset + size > len(blob):
                raise CorruptSnapshotFileError("%s is damaged: a memory segment runs past the end" % name)
            segments.append((int(address), bytes(blob[offset:offset + size])))
        snapshot = Snapshot.from_dict(meta["snapshot"])
        problem = _check_snapshot(snapshot)
        if problem:
            raise CorruptSnapshotFileError("%s is damaged: %s" % (name, problem))
        if not isinstance(meta["image"], dict) or not isinstance(meta.get("info", {}), dict) or \
                not all(isinstance(b, dict) for b in meta.get("binaries", ())):
            raise CorruptSnapshotFileError("%s is damaged: malformed metadata" % name)
        return cls(snapshot, dict(meta["image"]), segments, list(meta.get("binaries", ())),
                   dict(meta.get("info", {})))

    # -- files -----------------------------------------------------------------
    def write(self, path: str, compression: str = "zlib") -> int:
        """Write atomically (a temporary file renamed over ``path``); returns the size."""
        data = self.to_bytes(compression)
        directory = os.path.dirname(os.path.abspath(path))
        tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise SnapshotFileWriteError("cannot write %s: %s" % (path, e.strerror or e)) from None
        return len(data)


def load(path: str) -> SavedSnapshot:
    """Read a snapshot file (typed errors for anything that is not a good one)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER.size)
            if len(head) >= _HEADER.size and head[:len(MAGIC)] == MAGIC:
                length = _HEADER.unpack_from(head, 0)[5]
                if length > MAX_BODY:
                    raise CorruptSnapshotFileError("%s is damaged: body length %d" % (path, length))
            raw = head + fh.read()
    except IsADirectoryError:
        raise NotSnapshotFileError("%s is a directory, not a snapshot file" % path) from None
    except FileNotFoundError:
        raise SnapshotFileError("no such file: %s" % path, "check the path") from None
    except OSError as e:
        raise SnapshotFileError("cannot read %s: %s" % (path, e.strerror or e), "check the path and its permissions") from None
    return SavedSnapshot.from_bytes(raw, path)


def _check_snapshot(snap: Snapshot) -> str:
    """What is wrong with a decoded snapshot's value types ('' when nothing): front ends
    format these fields without further checks."""
    def bad(value, *types):
        return not isinstance(value, types) or isinstance(value, bool) and bool not in types

    if bad(snap.pid, int) or bad(snap.python_version, str) or bad(snap.executable, str) \
            or bad(snap.taken_at_ns, int) or not all(isinstance(a, str) for a in snap.command_line):
        return "malformed snapshot header"
    for thread in snap.threads:
        if bad(thread.thread_id, int) or (thread.native_id is not None and bad(thread.native_id, int)) \
                or (thread.name is not None and bad(thread.name, str)):
            return "malformed thread entry"
        for frame in thread.frames:
            if bad(frame.function, str) or bad(frame.filename, str) or bad(frame.line, int) \
                    or (frame.module is not None and bad(frame.module, str)):
                return "malformed frame in thread %#x" % thread.thread_id
            for local in frame.locals or ():
                address = getattr(local, "addr", getattr(local, "address", 0))
                if bad(local.name, str) or (local.repr is not None and bad(local.repr, str)) or bad(address, int):
                    return "malformed local in %s" % frame.function
    for task in getattr(snap, "tasks", ()):
        if bad(task.task_id, int) or bad(task.name, str) or bad(task.state, str) or not all(
                not bad(f.function, str) and not bad(f.filename, str) and not bad(f.line, int) for f in task.frames):
            return "malformed asyncio task"
    return ""


def _replace_frames(snap: Snapshot, change) -> Snapshot:
    import dataclasses
    threads = tuple(dataclasses.replace(t, frames=tuple(change(f) for f in t.frames)) for t in snap.threads)
    extra = {}
    if getattr(snap, "tasks", ()):
        extra["tasks"] = tuple(dataclasses.replace(t, frames=tuple(change(f) for f in t.frames))
                               for t in snap.tasks)
    return dataclasses.replace(snap, threads=threads, **extra)


def _take(target, locals: bool, max_repr: int):
    """The snapshot with asyncio tasks when the engine can read them (else without)."""
    try:
        return target.snapshot(locals=locals, max_repr=max_repr, tasks=True), True
    except TypeError:          # an engine without asyncio tasks
        pass
    except SnapshotError:      # tasks unreadable: the stacks are still worth saving
        pass
    return target.snapshot(locals=locals, max_repr=max_repr), False


def _cut_locals(frame, cut, max_repr: int):
    import dataclasses
    if not frame.locals:
        return frame
    return dataclasses.replace(frame, locals=tuple(
        dataclasses.replace(l, repr=cut(l.repr, max_repr)) if isinstance(l.repr, str) else l
        for l in frame.locals))


# ---------------------------------------------------------------------------- opening
def _image_process_class():
    from .process.image import ImageProcess
    return ImageProcess


class SavedProcess:
    """Factory namespace: ``SavedProcess.from_saved(saved)`` builds the read-only process."""

    @staticmethod
    def from_saved(saved: SavedSnapshot):
        from .elf import file_build_id as build_id
        data = dict(saved.image)
        data["segments"] = []
        files = []
        for f in data.get("files", ()):
            path, start, end, bias, bid = f[0], f[1], f[2], f[3], f[4]
            local = ""
            # use a binary on this machine only when it is the very same file
            if path.startswith("/") and os.path.isfile(path) and bid and _same_build_id(build_id, path, bid):
                local = path
            files.append([path, start, end, bias, bid, local])
        data["files"] = [f for f in files if f[5]]
        image_cls = _image_process_class()
        base = image_cls.from_dict(data)
        process = _saved_class()(saved.segments, base, saved.binaries, files)
        return process


def _same_build_id(build_id, path: str, wanted: str) -> bool:
    try:
        return build_id(path) == wanted
    except Exception:  # noqa: BLE001 - an unreadable file is not the same file
        return False


_SAVED_CLASS = None


def _saved_class():
    """``ImageProcess`` plus what a snapshot file adds: binary facts for discovery."""
    global _SAVED_CLASS
    if _SAVED_CLASS is not None:
        return _SAVED_CLASS
    ImageProcess = _image_process_class()

    class FileProcess(ImageProcess):
        """A snapshot file's memory, threads and registers (read-only, never live, never paused)."""

        def __init__(self, segments, base, binaries, all_files):
            super().__init__(segments, pid=base.pid, maps=base.maps(), files=base.mapped_files(),
                             threads=base.threads(), registers=base._registers, executable=base.executable(),
                             command_line=base.command_line(), name=base.name(),
                             in_syscall=base._in_syscall, thread_names=base._thread_names,
                             tid_map=base._tid_map, stopped=base._stopped)
            self._binaries = list(binaries)
            self._all_files = all_files

        def mapped_files(self):
            """Every file the target mapped (``local_path`` empty where this machine lacks it)."""
            from .process.base import MappedFile
            return [MappedFile(*f) for f in self._all_files]

        def binary_info(self, mapped):
            """Discovery's facts about ``mapped`` as saved (None: not saved, read the file)."""
            from .binary import BinaryInfo
            for data in self._binaries:
                if data.get("build_id") == mapped.build_id and data.get("target_path", data.get("path")) == mapped.path:
                    fields = {k: v for k, v in data.items() if k in BinaryInfo.__dataclass_fields__}
                    try:
                        info = BinaryInfo(**fields)
                    except TypeError:
                        return None
                    if not isinstance(info.symbols, dict) or not all(
                            isinstance(v, int) for v in info.symbols.values()):
                        return None
                    return info
            return None

    _SAVED_CLASS = FileProcess
    return FileProcess


# ---------------------------------------------------------------------------- capturing
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
    from .process.image import RecordingProcess
    from .target import Target

    started = time.monotonic()
    recorder = _recorder_class(RecordingProcess)(process)
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


def _binary_facts(process, target) -> List[Dict[str, Any]]:
    """Discovery's facts for every file it may consider (libpython and the executable)."""
    from . import binary
    from .discovery import _candidates
    out = []
    try:
        candidates = _candidates(process.mapped_files(), process.executable())
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
    from .process.base import REGISTERS
    tids = list(recorder.recorded_registers())
    if not tids or REGISTERS not in recorder.capabilities:
        return 0
    try:
        from .native import native_stacks
        return sum(1 for frames in native_stacks(recorder, tids).values() if frames)
    except Exception:  # noqa: BLE001 - native frames are a bonus: never fail a save over them
        return 0


_RECORDER = None
_PAGE = 4096
_PAGE_MASK = _PAGE - 1
#: Reads up to this size are served from the page cache while paused; pages kept at most (64 MiB).
_CACHED_READ = 64 << 10
_MAX_PAGES = 16384


def _recorder_class(base):
    """``RecordingProcess`` with a re-entrant pause (one pause for walk and exploration)
    and a count of distinct bytes recorded (the exploration's budget)."""
    global _RECORDER
    if _RECORDER is not None:
        return _RECORDER
    from contextlib import contextmanager

    class CaptureRecorder(base):
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

    _RECORDER = CaptureRecorder
    return CaptureRecorder


class Explorer:
    """Reads what ``print`` may later ask for, breadth first, within ``ExploreLimits``.

    Each visited object is rendered as ``print`` renders it (its default repr
    limits), so a path printed offline shows exactly what it would have shown
    live; containers and instance attributes are followed a few levels deep.
    Modules, functions and classes are rendered but not followed (they lead
    into the whole program), except that a class's own dict is read for class
    attributes seen through an instance.
    """

    _MISSING = "\x00pyspy-explore"   # a key no namespace holds: a lookup scans every entry

    def __init__(self, target, recorder, limits: ExploreLimits, stats: Dict[str, Any]):
        self.target = target
        self.objects = target.objects
        self.recorder = recorder
        self.limits = limits
        self.stats = stats
        self.seen: set = set()
        self.start_bytes = recorder.unique_bytes
        self.deadline = time.monotonic() + limits.max_seconds
        self.stats.update(objects=0, errors=0, stopped_by="")

    def _full(self) -> bool:
        if len(self.seen) >= self.limits.max_objects:
            self.stats["stopped_by"] = "max_objects"
            return True
        if self.recorder.unique_bytes - self.start_bytes >= self.limits.max_bytes:
            self.stats["stopped_by"] = "max_bytes"
            return True
        if time.monotonic() > self.deadline:
            self.stats["stopped_by"] = "max_seconds"
            return True
        return False

    def run(self, snap: Snapshot) -> None:
        local_roots: List[int] = []
        globals_roots: List[int] = []
        for thread in tuple(snap.threads) + tuple(getattr(snap, "tasks", ())):
            for frame in thread.frames:
                for local in frame.locals or ():
                    address = getattr(local, "addr", None)
                    if address is None:
                        address = getattr(local, "address", 0)
                    if address:
                        local_roots.append(address)
                g = getattr(frame, "globals_addr", None) or getattr(frame, "globals_address", None)
                if g:
                    globals_roots.append(g)
        self._walk(local_roots, self.limits.depth)
        if self._full():
            return
        namespaces = list(dict.fromkeys(globals_roots))
        builtins = self._builtins_dict()
        if builtins:
            namespaces.append(builtins)
        children: List[int] = []
        for d in namespaces:
            children.extend(self._namespace(d))
        self._walk(children, self.limits.globals_depth - 1)

    def _reset_budget(self) -> None:
        budget = getattr(self.target, "budget", None)
        reset = getattr(budget, "reset", None)
        if reset is not None:
            reset()

    def _walk(self, roots: Sequence[int], depth: int) -> None:
        level = [a for a in roots if a]
        for _ in range(max(0, depth) + 1):
            following: List[int] = []
            for address in level:
                if address in self.seen:
                    continue
                if self._full():
                    return
                following.extend(self._visit(address, follow=_ < depth))
            level = following
            if not level:
                return

    def _visit(self, address: int, follow: bool) -> List[int]:
        self.seen.add(address)
        self.stats["objects"] += 1
        self._reset_budget()
        objects = self.objects
        try:
            objects.repr(address, self.limits.print_max_repr, self.limits.print_depth)
            kind = objects.kind(address)
            type_addr = objects.type_addr(address)
            objects.type_name(type_addr)
            if not follow:
                return []
            if kind in ("list", "tuple"):
                return list(objects.sequence_items(address))
            if kind == "dict":
                objects.dict_get(address, self._MISSING)
                return [v for _, v in objects.dict_items(address)]
            if kind in ("instance", "other"):
                values = [v for _, v in objects.instance_dict_items(address)]
                objects.getattr(address, self._MISSING)
                self._class_dict(type_addr)
                return values
        except (SnapshotError, UnicodeDecodeError, ValueError, struct.error, RecursionError):
            self.stats["errors"] += 1
        return []

    def _class_dict(self, type_addr: int) -> None:
        """A class's own attributes (``request.kind``), rendered, not followed."""
        if type_addr in self.seen:
            return
        self.seen.add(type_addr)
        try:
            self.objects.getattr(type_addr, self._MISSING)
            tp_dict = self._ptr(type_addr + self.target.layout.PyTypeObject.tp_dict)
        except (SnapshotError, AttributeError, KeyError, TypeError, struct.error):
            return
        if tp_dict:
            for value in self._namespace(tp_dict):
                self._walk([value], 0)

    def _namespace(self, dict_addr: int) -> List[int]:
        """A globals or class dict: every key, and the values (returned, to be visited)."""
        if dict_addr in self.seen or self._full():
            return []
        self.seen.add(dict_addr)
        self._reset_budget()
        objects = self.objects
        try:
            objects.dict_get(dict_addr, self._MISSING)
            pairs = objects.dict_items(dict_addr)
            for key, _ in pairs:
                objects.repr(key, 256, 1)
        except (SnapshotError, UnicodeDecodeError, ValueError, struct.error, RecursionError):
            self.stats["errors"] += 1
            return []
        values = []
        for _, value in pairs:
            try:
                kind = objects.kind(value)
            except (SnapshotError, UnicodeDecodeError, ValueError, struct.error):
                continue
            if kind == "module":
                self._walk([value], 0)      # rendered, never followed into the program
            else:
                values.append(value)
        return values

    def _ptr(self, address: int) -> int:
        return struct.unpack("<Q", self.target.process.read(address, 8))[0]

    def _builtins_dict(self) -> Optional[int]:
        """``builtins.__dict__`` found as ``print`` finds it (sys.modules of the interpreter)."""
        try:
            target = self.target
            interp = target.walker.interpreter_addr()
            struct_ = target.layout.PyInterpreterState
            name = "imports_modules" if "imports_modules" in struct_ else "modules"
            modules = self._ptr(interp + struct_.fields[name].offset)
            if not modules:
                return None
            module = self.objects.dict_get(modules, "builtins")
            if not module:
                return None
            self.objects.getattr(module, self._MISSING)
            return self._ptr(module + target.layout.PyModuleObject.md_dict) or None
        except (SnapshotError, AttributeError, KeyError, TypeError, struct.error, UnicodeDecodeError):
            return None


def describe(saved: SavedSnapshot) -> str:
    """One line about a loaded file (the REPL's banner)."""
    snap = saved.snapshot
    when = saved.info.get("saved_at_ns") or snap.taken_at_ns
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when / 1e9)) if when else "?"
    return "snapshot of pid %d taken %s (%s%s)" % (
        snap.pid, stamp, saved.info.get("source", "live"), "" if saved.has_locals else ", no locals")


__all__ = ["SavedSnapshot", "capture", "load", "ExploreLimits", "SnapshotFileError", "NotSnapshotFileError",
           "SnapshotFileVersionError", "CorruptSnapshotFileError", "SnapshotFileWriteError", "FORMAT_VERSION",
           "MAGIC", "describe"]
