"""Where bytes, threads and registers come from: the ``Process`` seam (see ``base``).

``LiveProcess`` (``live``), ``ImageProcess`` and ``RecordingProcess`` (``image``), ``CoreProcess`` (``core``) are
imported on first use, so ``import snapshot.process`` stays cheap.
"""
from .base import (FILES, LIVE, PAUSABLE, REGISTERS, MappedFile, MemoryMap, OSThread, Process,
                   Registers)

__all__ = ["FILES", "LIVE", "PAUSABLE", "REGISTERS", "MappedFile", "MemoryMap", "OSThread", "Process",
           "Registers", "LiveProcess", "ImageProcess", "RecordingProcess", "CoreProcess"]

_LAZY = {"LiveProcess": "live", "ImageProcess": "image", "RecordingProcess": "image", "CoreProcess": "core"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib
    return getattr(importlib.import_module("." + module, __name__), name)
