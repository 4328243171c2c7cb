"""Native (C) frames of a paused target: DWARF CFI unwinding, capstone, symbols, merge.

Entry point: ``native_stacks(process, tids)`` -> ``{tid: [NativeFrame, ...]}``
(innermost first), for a ``Process`` whose threads are stopped (live:
inside ``paused()``; a core or a debugger inferior: always).  Everything
here is imported on first use: a plain ``dump`` never pays for it.
"""
from __future__ import annotations

import weakref
from typing import Dict, Iterable, List

_UNWINDERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def unwinder_for(process):
    """The process's unwinder (module map refreshed from its current mappings)."""
    from .modules import ModuleMap
    from .unwinder import Unwinder
    try:
        unwinder = _UNWINDERS.get(process)
    except TypeError:
        unwinder = None
    if unwinder is None:
        unwinder = Unwinder(process)
        try:
            _UNWINDERS[process] = unwinder
        except TypeError:
            pass
    else:
        unwinder.modules = ModuleMap(process.mapped_files(), process.maps(), unwinder.modules)
        unwinder._anon_rows.clear()
    return unwinder


def native_stacks(process, tids: Iterable[int], max_depth: int = 512) -> Dict[int, List]:
    """Native frames of each stopped thread in ``tids``, innermost first.

    A thread whose registers cannot be read is left out (it exited, or the
    source has none); ``native_stacks_with_reasons`` also says why each
    stack ended.
    """
    return {tid: frames for tid, (frames, _) in native_stacks_with_reasons(process, tids, max_depth).items()}


def native_stacks_with_reasons(process, tids: Iterable[int], max_depth: int = 512):
    """``{tid: (frames, why the unwind stopped)}``."""
    from ..errors import SnapshotError
    from .modules import flush_caches
    registers = {}
    for tid in tids:
        try:
            registers[tid] = process.registers(tid)
        except SnapshotError:
            continue
    unwinder = unwinder_for(process)
    result = unwinder.stacks(registers, max_depth)
    flush_caches()
    return result
