"""Old names of the memory seam, kept while other branches move to ``snapshot.process``.

The engine reads through a ``Process`` (``snapshot.process.base``): a live
pid is ``LiveProcess``, bytes held in memory are ``ImageProcess``.
"""
from .process.base import MemoryMap, Process as MemoryReader

__all__ = ["MemoryMap", "MemoryReader"]
