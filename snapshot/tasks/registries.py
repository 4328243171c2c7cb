"""Where asyncio keeps its registries in the target's mapped files (read with pyelftools).

* 3.14+: the ``_asyncio`` debug table, an ELF section (``.AsyncioDebug``) of a
  mapped python file, parsed by ``layouts.asyncio_debug``;
* 3.6: the static variables of the ``_asyncio`` extension (``all_tasks``,
  ``current_tasks``), local symbols of its ``.symtab``.
"""
from __future__ import annotations

import struct

from ..errors import MemoryReadError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Optional


def find_static(process, library: str, name: str) -> Optional[int]:
    """Address of the symbol ``name`` (a local one: ``.symtab``) in the mapped file whose name
    starts with ``library``, or None."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    for mapped in process.mapped_files():
        if not mapped.path.rsplit("/", 1)[-1].startswith(library):
            continue
        try:
            with open(mapped.local_path, "rb") as fh:
                elf = ELFFile(fh)
                table = elf.get_section_by_name(".symtab")
                symbols = table.get_symbol_by_name(name) if table is not None else None
                if not symbols or not symbols[0]["st_value"]:
                    continue
                return symbols[0]["st_value"] + (0 if elf["e_type"] == "ET_EXEC" else mapped.load_bias)
        except (OSError, ELFError, ValueError, struct.error):
            continue
    return None


_ET_EXEC = 2


def find_debug_table(process, section_name: str) -> Optional[Dict[str, int]]:
    """The ``_asyncio`` debug table: the named section of a mapped ``python`` file, read from memory
    (the section found with the ``struct`` ELF reader: pyelftools costs a cold attach dearly)."""
    from layouts.asyncio_debug import TABLE_SIZE, parse_asyncio_debug
    from ..elf import ElfFile, ElfFormatError
    for mapped in process.mapped_files():
        base = mapped.path.rsplit("/", 1)[-1]
        if "python" not in mapped.path and "_asyncio" not in base:
            continue
        try:
            elf = ElfFile(mapped.local_path)
        except (OSError, ElfFormatError):
            continue
        try:
            section = elf.sections.get(section_name)
            if section is None:
                continue
            address = section.addr + (0 if elf.type == _ET_EXEC else mapped.load_bias)
        finally:
            elf.close()
        try:
            return parse_asyncio_debug(process.read(address, TABLE_SIZE))
        except (MemoryReadError, ValueError):
            continue
    return None
