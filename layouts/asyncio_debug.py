"""The ``_asyncio`` module's debug offsets (3.14+), as CPython lays them out.

``Py_AsyncioModuleDebugOffsets`` (``Include/internal/pycore_debug_offsets.h``) sits in
its own ELF section (``.AsyncioDebug``) of the ``_asyncio`` extension (3.14) or of the
interpreter binary when ``_asyncio`` is built in (Debian's 3.15).  Every field is a u64:
offsets into ``TaskObj``, ``PyInterpreterState`` and ``_PyThreadStateImpl``.
"""
from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict


#: Field names in table order (groups: task object, interpreter state, thread state).
FIELDS = (
    "task_size", "task_name", "task_awaited_by", "task_is_task", "task_awaited_by_is_set",
    "task_coro", "task_node",
    "interp_size", "interp_asyncio_tasks_head",
    "tstate_size", "tstate_asyncio_running_loop", "tstate_asyncio_running_task", "tstate_asyncio_tasks_head",
)
TABLE_SIZE = 8 * len(FIELDS)
#: Largest struct size accepted (CPython's reader refuses more than this too).
MAX_STRUCT = 1 << 20


def parse_asyncio_debug(raw: bytes) -> Dict[str, int]:
    """The table as a dict; ValueError when it is too short or any size/offset is implausible."""
    if len(raw) < TABLE_SIZE:
        raise ValueError("asyncio debug table is %d bytes, expected %d" % (len(raw), TABLE_SIZE))
    table = dict(zip(FIELDS, struct.unpack_from("<%dQ" % len(FIELDS), raw)))
    for group in ("task", "interp", "tstate"):
        size = table[group + "_size"]
        if not 0 < size <= MAX_STRUCT:
            raise ValueError("asyncio debug table: %s size %d" % (group, size))
        for name, value in table.items():
            if name.startswith(group + "_") and name != group + "_size" and value >= size:
                raise ValueError("asyncio debug table: %s=%d outside its struct (%d bytes)" % (name, value, size))
    return table
