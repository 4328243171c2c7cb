"""The snapshot file format: one stopped moment of a process, readable later on another machine.

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
not a snapshot file at all is a typed one-line error with a hint.  Taking a
snapshot to save is ``capture``; opening one as a ``Process`` is
``snapshot.process.saved``.
"""
from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from layouts.records import dataclass, field

from ..errors import SnapshotError
from ..model import Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, List, Tuple


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

    def process(self):
        """The memory, threads and registers as a read-only ``Process`` for the engine."""
        from ..process.saved import from_saved
        try:
            return from_saved(self)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as e:
            raise CorruptSnapshotFileError("the snapshot file's process image is damaged: %s: %s"
                                           % (type(e).__name__, e)) from None

    def snapshot_for(self, locals: bool, max_repr: int, tasks: bool = False) -> Snapshot:
        """The stored snapshot as ``Target.snapshot(locals, max_repr, tasks)`` would have given it."""
        snap = self.snapshot
        if not tasks and getattr(snap, "tasks", ()):
            from layouts import records
            snap = records.replace(snap, tasks=())
        saved_max = int(self.info.get("max_repr") or 0)
        if not locals or not self.has_locals:
            return _replace_frames(snap, lambda f: f.without_locals())
        if saved_max and max_repr < saved_max:
            # reprs are cut as a prefix: a shorter cut of the stored text is what a
            # smaller max_repr would have read
            from ..objects import cut
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
        problem = _check_info(meta.get("info", {}))
        if problem:
            raise CorruptSnapshotFileError("%s is damaged: %s" % (name, problem))
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
    from layouts import records
    threads = tuple(records.replace(t, frames=tuple(change(f) for f in t.frames)) for t in snap.threads)
    extra = {}
    if getattr(snap, "tasks", ()):
        extra["tasks"] = tuple(records.replace(t, frames=tuple(change(f) for f in t.frames))
                               for t in snap.tasks)
    return records.replace(snap, threads=threads, **extra)


def _cut_locals(frame, cut, max_repr: int):
    from layouts import records
    if not frame.locals:
        return frame
    return records.replace(frame, locals=tuple(
        records.replace(l, repr=cut(l.repr, max_repr)) if isinstance(l.repr, str) else l
        for l in frame.locals))


#: The ``info`` fields a reader uses, and the JSON types they must have (others are kept unread).
_INFO_TYPES = {"max_repr": int, "saved_at_ns": int, "capture_seconds": (int, float), "source": str,
               "locals": (bool, int)}


def _check_info(info: dict) -> str:
    """Why the file's ``info`` cannot be trusted, or '' (untrusted input: a damaged field must
    be a typed error at load, not a TypeError in whatever reads it later)."""
    for key, kinds in _INFO_TYPES.items():
        value = info.get(key)
        if value is not None and not isinstance(value, kinds):
            return "its info field %r is a %s" % (key, type(value).__name__)
    return ""


def describe(saved: SavedSnapshot) -> str:
    """One line about a loaded file (the REPL's banner)."""
    snap = saved.snapshot
    when = saved.info.get("saved_at_ns") or snap.taken_at_ns
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when / 1e9)) if when else "?"
    return "snapshot of pid %d taken %s (%s%s)" % (
        snap.pid, stamp, saved.info.get("source", "live"), "" if saved.has_locals else ", no locals")
