"""Where bytes, threads and registers come from: the ``Process`` seam (see ``base``)."""
from .base import (FILES, LIVE, PAUSABLE, REGISTERS, MappedFile, MemoryMap, OSThread, Process,
                   Registers)

__all__ = ["FILES", "LIVE", "PAUSABLE", "REGISTERS", "MappedFile", "MemoryMap", "OSThread", "Process",
           "Registers"]
