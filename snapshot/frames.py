"""Turning the walker's raw frames into model ``Frame``s, with method names and locals.

Stack-only frames are interned by (code address, line, function): a sampler
meets the same few thousand frames again and again, and equal frames being
the same object makes aggregation cheap.  Locals are rendered through the
object reader and never fail the frame: an unreadable value becomes
``<unreadable: ...>``.
"""
from __future__ import annotations

import struct

from .errors import SnapshotError, WorkBudgetError
from .model import Frame, Local

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Optional, Tuple


_U64 = struct.Struct("<Q")
_FIELDS = set(getattr(Frame, "__dataclass_fields__", ()))
#: The model's name for a frame's globals dict address (``globals_addr`` per the guide's naming).
_GLOBALS_FIELD = "globals_addr" if "globals_addr" in _FIELDS else "globals_address"
_HAS_IS_ENTRY = "is_entry" in _FIELDS
#: Interned frames kept before the table is emptied (bounds memory on endless new code).
MAX_INTERNED = 200_000


class FrameBuilder:
    """Model frames from raw frames, for one target."""

    def __init__(self, process, layout, objects):
        self.process = process
        self.layout = layout
        self.objects = objects
        self._cache: Dict[Tuple[int, int, str, bool], Frame] = {}
        #: object -> its type, read in one batch by a caller building many frames (asyncio tasks).
        self.known_types: Dict[int, int] = {}
        self._plain: Dict[tuple, Frame] = {}  # (CodeInfo, line, is_entry) -> frame, no method name needed

    def frame(self, raw, with_locals: bool, max_repr: int, max_depth: int) -> Frame:
        if not with_locals:
            model = raw.model
            if model is None:  # kept on the raw frame: a remembered one is met again next pass
                model = raw.model = self._frame(raw, False, 0, 0)
            return model
        return self._frame(raw, with_locals, max_repr, max_depth)

    def _frame(self, raw, with_locals: bool, max_repr: int, max_depth: int) -> Frame:
        code = raw.code
        if not with_locals and not code.needs_first_local:
            # The sampler's hot path: one lookup by the code object itself (identity hash).
            frame = self._plain.get((code, raw.line, raw.is_entry))
            if frame is not None:
                return frame
        function = code.function
        if code.needs_first_local and raw.localsplus:
            function = self._method_name(code, raw.localsplus[0]) or function
        extra = {}
        entry = bool(getattr(raw, "is_entry", False))
        if _HAS_IS_ENTRY and entry:
            extra["is_entry"] = True
        if not with_locals:
            key = (code.address, raw.line, function, entry)
            frame = self._cache.get(key)
            if frame is None:
                frame = Frame(function, code.filename, raw.line, **extra)
                if len(self._cache) > MAX_INTERNED:
                    self._cache.clear()
                    self._plain.clear()
                self._cache[key] = frame
                if not code.needs_first_local:
                    self._plain[(code, raw.line, raw.is_entry)] = frame
            return frame
        extra[_GLOBALS_FIELD] = raw.globals_addr or None
        return Frame(function, code.filename, raw.line, self._locals(raw, max_repr, max_depth), **extra)

    def _method_name(self, code, first: int) -> Optional[str]:
        if not first:
            return None
        try:
            if code.slot_names[0] == "self":
                type_addr = self.known_types.get(first) or self.objects.type_addr(first)
            else:
                type_addr = first
            name = self.objects.type_name(type_addr)
        except (SnapshotError, UnicodeDecodeError, struct.error, ValueError):
            return None
        return "%s.%s" % (name.rsplit(".", 1)[-1], code.name) if name else None

    def _locals(self, raw, max_repr: int, max_depth: int) -> Tuple[Local, ...]:
        code = raw.code
        if raw.localsplus is None:
            return ()
        refs = self.layout.facts.stackrefs
        tagged = refs.tag_mask
        mask = ~tagged & 0xFFFFFFFFFFFFFFFF
        try:
            names, kinds = code.slot_names, code.slot_kinds
        except (SnapshotError, UnicodeDecodeError, struct.error, ValueError) as e:
            return (Local("<invalid names>", "<unreadable: %s>" % e, 0, False),)
        result = []
        for index, (name, kind, value) in enumerate(zip(names, kinds, raw.localsplus)):
            if kind == "hidden":
                continue
            if tagged and value & tagged == refs.int_tag:
                # A tagged small int (3.14+ stack references): the value is in the pointer.
                result.append(Local(name, repr(value >> refs.int_shift), 0, index < code.nargs))
                continue
            address = value & mask
            if not address:
                continue
            try:
                if kind in ("cell", "free") and self.objects.kind(address) == "cell":
                    address = _U64.unpack(self.process.read(address + self.layout.PyCellObject.ob_ref, 8))[0]
                    if not address:
                        continue
                text = self.objects.repr(address, max_repr, max_depth)
            except WorkBudgetError:
                raise
            except (SnapshotError, UnicodeDecodeError, struct.error, ValueError, RecursionError) as e:
                text = "<unreadable: %s>" % e
            result.append(Local(name, text, address, index < code.nargs))
        return tuple(result)
