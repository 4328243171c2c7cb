"""The native unwinder's ELF names, kept importable here: the reader is ``snapshot.elf``.

One ``struct``-only ELF reader serves attach (build-ids, load addresses),
cores and native unwinding; this module only re-exports what ``native/``
imports from it.
"""
from __future__ import annotations

from ..elf import PF_X, PT_GNU_EH_FRAME, PT_LOAD, PT_NOTE, SHT_NOBITS, SHT_NOTE, ElfFile, ElfFormatError, \
    Section, Segment

__all__ = ["ElfFile", "ElfFormatError", "Section", "Segment", "SHT_NOBITS", "SHT_NOTE", "PT_LOAD", "PT_NOTE",
           "PT_GNU_EH_FRAME", "PF_X"]
