"""Snapshot files: one stopped moment of a process, readable later on another machine.

Why: an on-call engineer captures a wedged server once (``pyspy-snapshot save``)
and studies it afterwards, or hands it to someone else, without the process,
its core, or its binaries.  The rooms: ``fileformat`` (the bytes on disk and
``SavedSnapshot``), ``capture`` (taking one inside one pause), ``explore``
(what beyond the walk is saved so ``print`` works offline); a file opened as
a ``Process`` is ``snapshot.process.saved``.  This package keeps the names
callers import from ``snapshot.savefile``.
"""
from __future__ import annotations

from .capture import ExploreLimits, capture
from .fileformat import (_HEADER, COMPRESSIONS, EXTENSION, FORMAT_VERSION, LZMA, MAGIC, MAX_BODY, ZLIB,
                         CorruptSnapshotFileError, NotSnapshotFileError, SavedSnapshot, SnapshotFileError,
                         SnapshotFileVersionError, SnapshotFileWriteError, describe, load)

__all__ = ["SavedSnapshot", "capture", "load", "ExploreLimits", "SnapshotFileError", "NotSnapshotFileError",
           "SnapshotFileVersionError", "CorruptSnapshotFileError", "SnapshotFileWriteError", "FORMAT_VERSION",
           "MAGIC", "describe", "EXTENSION", "ZLIB", "LZMA", "COMPRESSIONS", "MAX_BODY", "_HEADER"]
