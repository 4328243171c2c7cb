"""Native (C) frames of a paused target: DWARF CFI unwinding, capstone, symbols, merge.

Entry point: ``native_stacks(process, tids)`` -> ``{tid: [NativeFrame, ...]}``
(innermost first), for a ``Process`` whose threads are stopped (live:
inside ``paused()``; a core or a debugger inferior: always).  Everything
here is imported on first use: a plain ``dump`` never pays for it.
"""
from __future__ import annotations

import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
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
    maps = process.maps()
    if unwinder is None:
        unwinder = Unwinder(process, ModuleMap(process.mapped_files(), maps))
        try:
            _UNWINDERS[process] = unwinder
        except TypeError:
            pass
    elif maps != unwinder.modules.maps:
        # something was mapped or unmapped (dlopen, JIT): files and anonymous code may differ
        unwinder.modules = ModuleMap(process.mapped_files(), maps, unwinder.modules)
        unwinder._anon_rows.clear()
        unwinder._frames.clear()
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


def resolve_function(process, name: str):
    """(address in the target, module path) of the function ``name`` (``lib:name`` restricts the
    search to modules whose file name contains ``lib``), or None."""
    unwinder = unwinder_for(process)
    wanted_lib, _, wanted = name.rpartition(":")
    for module in unwinder.modules.modules:
        if wanted_lib and wanted_lib not in module.path:
            continue
        found = module.symbols.address_of(wanted)
        if found is not None:
            return found[0] + module.load_bias, module.path
    return None


def disassemble(process, where, count: int = 12):
    """Instructions around an address (int) or a function (name) of the target, with symbols.

    A list of ``disasm.Instruction``; code comes from the mapped file when
    the address is in one (no remote reads), else from target memory.
    """
    from . import disasm
    from ..errors import SnapshotError
    unwinder = unwinder_for(process)
    modules = unwinder.modules
    if isinstance(where, str):
        found = resolve_function(process, where)
        if found is None:
            raise SnapshotError("no function called %s in the target's symbol tables" % where,
                                "use a name as `bt --native` shows it, or an address")
        address = found[0]
    else:
        address = int(where)
    module = modules.module_at(address)

    def read_code(start: int, size: int):
        if module is not None and module.elf is not None and module.start <= start < module.end:
            return module.elf.read_vaddr(start - module.load_bias, size)
        mapping = modules.executable(start)
        if mapping is None:
            return None
        size = min(size, mapping[1] - start)
        return process.read_many([(start, size)])[0] if size > 0 else None

    def symbolize(at: int):
        m = modules.module_at(at)
        if m is None:
            return None, 0
        name, offset, exact = m.symbols.lookup(at - m.load_bias)
        return (name, offset) if exact else (None, 0)

    start = None
    if module is not None:
        name, offset, exact = module.symbols.lookup(address - module.load_bias)
        if exact:
            start = address - offset
    return disasm.disassemble(read_code, address, count, symbolize, start)
