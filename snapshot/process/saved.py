"""A snapshot file opened as a ``Process``: its memory, threads and registers, read-only.

An ``ImageProcess`` (never LIVE, never PAUSABLE) plus what a file adds: the
binary facts discovery needs (so it opens without the binaries), and every
file the target mapped, with a local path only where this machine has the
very same build.
"""
from __future__ import annotations

import os

from ..elf import file_build_id
from .base import MappedFile
from .image import ImageProcess


def from_saved(saved) -> "FileProcess":
    """The read-only process of a ``SavedSnapshot`` (its ``image``, ``segments`` and ``binaries``)."""
    data = dict(saved.image)
    data["segments"] = []
    files = []
    for f in data.get("files", ()):
        path, start, end, bias, bid = f[0], f[1], f[2], f[3], f[4]
        local = ""
        # use a binary on this machine only when it is the very same file
        if path.startswith("/") and os.path.isfile(path) and bid and _same_build_id(path, bid):
            local = path
        files.append([path, start, end, bias, bid, local])
    data["files"] = [f for f in files if f[5]]
    base = ImageProcess.from_dict(data)
    return FileProcess(saved.segments, base, saved.binaries, files)


def _same_build_id(path: str, wanted: str) -> bool:
    try:
        return file_build_id(path) == wanted
    except Exception:  # noqa: BLE001 - an unreadable file is not the same file
        return False


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

    def mapped_files(self, only=None):
        """Every file the target mapped (``local_path`` empty where this machine lacks it)."""
        return [MappedFile(*f) for f in self._all_files if only is None or only(f[0])]

    def binary_info(self, mapped):
        """Discovery's facts about ``mapped`` as saved (None: not saved, read the file)."""
        from ..binary import BinaryInfo
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
