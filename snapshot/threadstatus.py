"""What each thread is doing besides its stack: GIL status, garbage collection, the exception it handles.

Read from memory only, never by running code in the target:

* **status**: ``holds_gil`` (the GIL holder), ``waiting_for_gil`` (where the
  thread state records a request for it: ``gil_requested``, 3.15), ``idle``
  (the walker's rule: not on CPU or in a known wait), else ``running`` (on CPU
  without the GIL, e.g. in C code that released it);
* **gc_collecting**: the interpreter's GC state ``collecting`` flag (in
  ``_PyRuntime.gc`` for 3.7/3.8, in each interpreter from 3.9; the layout says
  which struct holds ``gc_collecting``; 2.7/3.6 keep it in a static of
  gcmodule.c, found by its symbol: unknown, so False, on a stripped build);
* **exception**: the one ``sys.exc_info()`` would return in that thread: the
  first item of the ``exc_info`` stack (``_PyErr_StackItem``; a generator's
  own item links to the thread's through ``previous_item``) whose
  ``exc_value`` is set and not None (2.7/3.6 have no such stack: the thread
  state's own ``exc_value``, which generators swap in and out).  Its type is
  ``tp_name`` (2.7: without the builtin ``exceptions.`` prefix); the message is ``args[0]`` when it is a str (2.7: str or
  unicode), else the repr of the single argument or of the whole ``args``
  tuple (what ``BaseException.__str__`` prints for exceptions that do not
  override it).
"""
from __future__ import annotations

import struct

from .errors import SnapshotError
from .model import HandledException

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional


_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
#: Exception-stack items followed from a thread state (nested generators, each with its own item).
MAX_STACK_ITEMS = 256
#: Characters of an exception message kept.
MAX_MESSAGE = 1024
_ERRORS = (SnapshotError, UnicodeDecodeError, struct.error, ValueError, RecursionError)


def status_of(holds_gil: bool, gil_requested: bool, is_idle: bool) -> str:
    """The ``ThreadStack.status`` word for these facts."""
    if holds_gil:
        return "holds_gil"
    if gil_requested:
        return "waiting_for_gil"
    return "idle" if is_idle else "running"


class ThreadStatusReader:
    """GC state and handled exceptions of one target's threads."""

    def __init__(self, process, layout, objects, runtime_addr: int, none_addr: Optional[int] = None,
                 gc_static_addr: Optional[int] = None):
        self.process = process
        self.objects = objects
        self.runtime_addr = runtime_addr
        self.none_addr = none_addr or 0
        ts = layout.PyThreadState
        self.ts_exc_info = ts.get("exc_info")
        self.ts_exc_value = ts.get("exc_value")   # 2.7/3.6: no exception stack
        self.py2_text = layout.facts.strings.model == "py2"
        prefix = layout.facts.builtin_exceptions_module
        self.exceptions_prefix = prefix + "." if prefix else None
        self.ts_gil_requested = ts.get("gil_requested")
        item = layout.structs.get("_PyErr_StackItem")
        self.item_size = item.size if item is not None else 0
        self.item_value = item.get("exc_value") if item is not None else None
        self.item_previous = item.get("previous_item") if item is not None else None
        exc = layout.structs.get("PyBaseExceptionObject")
        self.args_offset = exc.get("args") if exc is not None else None
        interp_gc = layout.PyInterpreterState.get("gc_collecting")
        runtime = layout.structs.get("_PyRuntimeState")
        runtime_gc = runtime.get("gc_collecting") if runtime is not None else None
        self._gc_in_runtime = interp_gc is None and runtime_gc is not None
        self._gc_offset = runtime_gc if self._gc_in_runtime else interp_gc
        # 2.7/3.6: a static, whose address the binary's symbols give (None on a stripped build)
        self._gc_static = gc_static_addr if layout.facts.gc_collecting_static else None

    # -- GIL requests ------------------------------------------------------------------
    def gil_requested(self, tstate_raw: bytes) -> bool:
        """The thread state records that it waits for the GIL (only where the field exists)."""
        off = self.ts_gil_requested
        if off is None or off + 4 > len(tstate_raw):
            return False
        return _I32.unpack_from(tstate_raw, off)[0] != 0

    # -- garbage collection -------------------------------------------------------------
    def gc_collecting(self, interp_addr: int) -> bool:
        if self._gc_static:
            addr = self._gc_static
        elif self._gc_offset is None:
            return False
        else:
            addr = (self.runtime_addr if self._gc_in_runtime else interp_addr) + self._gc_offset
        try:
            return _I32.unpack(self.process.read(addr, 4))[0] != 0
        except _ERRORS:
            return False

    # -- handled exception --------------------------------------------------------------
    def exception(self, tstate_raw: bytes, tstate_addr: int = 0) -> Optional[HandledException]:
        """The exception the thread is handling (None: none, or unreadable).  ``tstate_addr``:
        where ``tstate_raw`` was copied from (the usual handler stack entry is inside it)."""
        try:
            if self.ts_exc_info is None and self.ts_exc_value is not None:
                value = self._own_value(tstate_raw)
            elif self.ts_exc_info is None or self.item_value is None or self.ts_exc_info + 8 > len(tstate_raw):
                return None
            else:
                value = self._current_value(_U64.unpack_from(tstate_raw, self.ts_exc_info)[0], tstate_addr, tstate_raw)
            if not value:
                return None
            return HandledException(self._type_name(value), self._message(value), value)
        except _ERRORS:
            return None

    def _own_value(self, tstate_raw: bytes) -> int:
        """2.7/3.6: ``tstate->exc_value`` (what ``sys.exc_info()`` returns there)."""
        if self.ts_exc_value + 8 > len(tstate_raw):
            return 0
        value = _U64.unpack_from(tstate_raw, self.ts_exc_value)[0]
        if not value or value == self.none_addr or self.objects.kind(value) == "none":
            return 0
        return value

    def _current_value(self, item: int, tstate_addr: int = 0, tstate_raw: bytes = b"") -> int:
        seen = set()
        while item and item not in seen and len(seen) < MAX_STACK_ITEMS:
            seen.add(item)
            start = item - tstate_addr
            if tstate_addr and 0 <= start and start + self.item_size <= len(tstate_raw):
                raw = tstate_raw[start:start + self.item_size]  # the thread state's own entry: no read
            else:
                raw = self.process.read(item, self.item_size)
            value = _U64.unpack_from(raw, self.item_value)[0]
            if value and value != self.none_addr and self.objects.kind(value) != "none":
                return value
            item = _U64.unpack_from(raw, self.item_previous)[0] if self.item_previous is not None else 0
        return 0

    def _type_name(self, value: int) -> str:
        name = self.objects.type_name(self.objects.type_addr(value))
        if self.exceptions_prefix and name.startswith(self.exceptions_prefix):
            return name[len(self.exceptions_prefix):]   # 2.7: "exceptions.ValueError" is ValueError
        return name

    def _message(self, value: int) -> str:
        if self.args_offset is None:
            return ""
        args = _U64.unpack(self.process.read(value + self.args_offset, 8))[0]
        if not args or self.objects.kind(args) != "tuple":
            return ""
        items = self.objects.sequence_items(args, 2)
        if not items:
            return ""
        if len(items) == 1:
            first = items[0]
            kind = self.objects.kind(first)
            if kind == "str":
                return self.objects.string(first, MAX_MESSAGE)
            if kind == "bytes" and self.py2_text:   # 2.7's str: BaseException.__str__ is its text
                return self.objects.bytes_value(first, MAX_MESSAGE).decode("utf-8", "backslashreplace")
            return self.objects.repr(first, MAX_MESSAGE, 2)
        return self.objects.repr(args, MAX_MESSAGE, 2)
