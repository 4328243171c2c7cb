"""Old names of the memory seam, kept while other branches move to ``snapshot.process``.

The engine reads through a ``Process`` (``snapshot.process.base``): a live
pid is ``LiveProcess``, bytes held in memory are ``ImageProcess``.
"""
from .process.base import MemoryMap, Process as MemoryReader
from .process.image import ImageProcess as BytesMemory
from .process.memory import ProcessMemory
from .process.procfs import parse_maps

__all__ = ["BytesMemory", "MemoryMap", "MemoryReader", "ProcessMemory", "parse_maps"]
