"""What a capture reads beyond the walk, so that ``print`` works offline: locals, then globals.

Why bounded: the exploration runs while the target is paused, over memory
that may be garbage, so it stops at ``ExploreLimits`` (objects, bytes,
seconds) and counts what it could not read instead of failing the save.
"""
from __future__ import annotations

import struct
import time

from ..errors import SnapshotError
from ..model import Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, List, Optional, Sequence


class Explorer:
    """Reads what ``print`` may later ask for, breadth first, within ``ExploreLimits``.

    Each visited object is rendered as ``print`` renders it (its default repr
    limits), so a path printed offline shows exactly what it would have shown
    live; containers and instance attributes are followed a few levels deep.
    Modules, functions and classes are rendered but not followed (they lead
    into the whole program), except that a class's own dict is read for class
    attributes seen through an instance.
    """

    _MISSING = "\x00pyspy-explore"   # a key no namespace holds: a lookup scans every entry

    def __init__(self, target, recorder, limits, stats: Dict[str, Any]):
        self.target = target
        self.objects = target.objects
        self.recorder = recorder
        self.limits = limits
        self.stats = stats
        self.seen: set = set()
        self.start_bytes = recorder.unique_bytes
        self.deadline = time.monotonic() + limits.max_seconds
        self.stats.update(objects=0, errors=0, stopped_by="")

    def _full(self) -> bool:
        if len(self.seen) >= self.limits.max_objects:
            self.stats["stopped_by"] = "max_objects"
            return True
        if self.recorder.unique_bytes - self.start_bytes >= self.limits.max_bytes:
            self.stats["stopped_by"] = "max_bytes"
            return True
        if time.monotonic() > self.deadline:
            self.stats["stopped_by"] = "max_seconds"
            return True
        return False

    def run(self, snap: Snapshot) -> None:
        local_roots: List[int] = []
        globals_roots: List[int] = []
        for thread in tuple(snap.threads) + tuple(getattr(snap, "tasks", ())):
            for frame in thread.frames:
                for local in frame.locals or ():
                    address = getattr(local, "addr", None)
                    if address is None:
                        address = getattr(local, "address", 0)
                    if address:
                        local_roots.append(address)
                g = getattr(frame, "globals_addr", None) or getattr(frame, "globals_address", None)
                if g:
                    globals_roots.append(g)
        self._walk(local_roots, self.limits.depth)
        if self._full():
            return
        namespaces = list(dict.fromkeys(globals_roots))
        builtins = self._builtins_dict()
        if builtins:
            namespaces.append(builtins)
        children: List[int] = []
        for d in namespaces:
            children.extend(self._namespace(d))
        self._walk(children, self.limits.globals_depth - 1)

    def _reset_budget(self) -> None:
        budget = getattr(self.target, "budget", None)
        reset = getattr(budget, "reset", None)
        if reset is not None:
            reset()

    def _walk(self, roots: Sequence[int], depth: int) -> None:
        level = [a for a in roots if a]
        for _ in range(max(0, depth) + 1):
            following: List[int] = []
            for address in level:
                if address in self.seen:
                    continue
                if self._full():
                    return
                following.extend(self._visit(address, follow=_ < depth))
            level = following
            if not level:
                return

    def _visit(self, address: int, follow: bool) -> List[int]:
        self.seen.add(address)
        self.stats["objects"] += 1
        self._reset_budget()
        objects = self.objects
        try:
            objects.repr(address, self.limits.print_max_repr, self.limits.print_depth)
            kind = objects.kind(address)
            type_addr = objects.type_addr(address)
            objects.type_name(type_addr)
            if not follow:
                return []
            if kind in ("list", "tuple"):
                return list(objects.sequence_items(address))
            if kind == "dict":
                objects.dict_get(address, self._MISSING)
                return [v for _, v in objects.dict_items(address)]
            if kind in ("instance", "other"):
                values = [v for _, v in objects.instance_dict_items(address)]
                objects.getattr(address, self._MISSING)
                self._class_dict(type_addr)
                return values
        except (SnapshotError, UnicodeDecodeError, ValueError, struct.error, RecursionError):
            self.stats["errors"] += 1
        return []

    def _class_dict(self, type_addr: int) -> None:
        """A class's own attributes (``request.kind``), rendered, not followed."""
        if type_addr in self.seen:
            return
        self.seen.add(type_addr)
        try:
            self.objects.getattr(type_addr, self._MISSING)
            tp_dict = self._ptr(type_addr + self.target.layout.PyTypeObject.tp_dict)
        except (SnapshotError, AttributeError, KeyError, TypeError, struct.error):
            return
        if tp_dict:
            for value in self._namespace(tp_dict):
                self._walk([value], 0)

    def _namespace(self, dict_addr: int) -> List[int]:
        """A globals or class dict: every key, and the values (returned, to be visited)."""
        if dict_addr in self.seen or self._full():
            return []
        self.seen.add(dict_addr)
        self._reset_budget()
        objects = self.objects
        try:
            objects.dict_get(dict_addr, self._MISSING)
            pairs = objects.dict_items(dict_addr)
            for key, _ in pairs:
                objects.repr(key, 256, 1)
        except (SnapshotError, UnicodeDecodeError, ValueError, struct.error, RecursionError):
            self.stats["errors"] += 1
            return []
        values = []
        for _, value in pairs:
            try:
                kind = objects.kind(value)
            except (SnapshotError, UnicodeDecodeError, ValueError, struct.error):
                continue
            if kind == "module":
                self._walk([value], 0)      # rendered, never followed into the program
            else:
                values.append(value)
        return values

    def _ptr(self, address: int) -> int:
        return struct.unpack("<Q", self.target.process.read(address, 8))[0]

    def _builtins_dict(self) -> Optional[int]:
        """``builtins.__dict__`` found as ``print`` finds it (sys.modules of the interpreter)."""
        try:
            target = self.target
            interp = target.walker.interpreter_addr()
            struct_ = target.layout.PyInterpreterState
            name = "imports_modules" if "imports_modules" in struct_ else "modules"
            modules = self._ptr(interp + struct_.fields[name].offset)
            if not modules:
                return None
            module = self.objects.dict_get(modules, "builtins")
            if not module:
                return None
            self.objects.getattr(module, self._MISSING)
            return self._ptr(module + target.layout.PyModuleObject.md_dict) or None
        except (SnapshotError, AttributeError, KeyError, TypeError, struct.error, UnicodeDecodeError):
            return None
