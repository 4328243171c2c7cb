"""The walker's first step: the interpreter states of a process (main and subinterpreters).

Why its own module: every sample starts here, and the list almost never
changes, so it carries its own shortcut (a sole interpreter is not re-walked).
"""
from __future__ import annotations

import struct

from ..errors import CorruptDataError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List

#: Most interpreters (main + subinterpreters) followed along ``PyInterpreterState.next``.
MAX_INTERPRETERS = 1024

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


class InterpreterList:
    """Mixed into ``Walker``: the interpreter list (the walker's memory, layout and root address)."""

    def _setup_interpreter_list(self, layout) -> None:
        facts = layout.facts
        self.head_offset = _HEAD_OFFSET[facts.interpreter_list](layout)
        self.main_offset = _MAIN_OFFSET[facts.interpreter_list](layout)
        interp = layout.PyInterpreterState
        self.interp_id_offset = interp.get("id")
        self._sole_interpreter = 0  # the list's only member last time (0: several, or not read)

    def interpreter_addr(self) -> int:
        """The main interpreter (``_PyRuntime.interpreters.main``), not the newest one (``head``):
        a subinterpreter created and destroyed while sampling must not become our interpreter.
        (2.7/3.6 keep no ``main``: the list head, ``interp_head``, is used.)"""
        address = 0
        if self.main_offset is not None:
            address = _U64.unpack(self.memory.read(self.runtime_addr + self.main_offset, 8))[0]
        if not address:
            address = _U64.unpack(self.memory.read(self.runtime_addr + self.head_offset, 8))[0]
        if not address:
            raise CorruptDataError("the interpreter is not initialised (no interpreter state yet)")
        return address

    def interpreter_addrs(self) -> List[int]:
        """Every interpreter state (main and subinterpreters), in id order, bounded.

        ``_PyRuntime.interpreters.head`` is the newest; ``next`` links lead to
        the main interpreter, which is last.
        """
        address = _U64.unpack(self.memory.read(self.runtime_addr + self.head_offset, 8))[0]
        if not address:
            raise CorruptDataError("the interpreter is not initialised (no interpreter state yet)")
        if address == self._sole_interpreter:  # the only one last time; a new one would be the head
            return [address]
        next_offset = self.layout.PyInterpreterState.next
        found: List[int] = []
        seen = set()
        while address and address not in seen and len(found) < MAX_INTERPRETERS:
            seen.add(address)
            found.append(address)
            address = _U64.unpack(self.memory.read(address + next_offset, 8))[0]
        found.reverse()
        self._sole_interpreter = found[0] if len(found) == 1 and not address else 0
        return found

    def interpreter_id(self, interp_addr: int) -> int:
        """``PyInterpreterState.id`` (0 for the main interpreter; 2.7/3.6 have no ids: 0)."""
        if self.interp_id_offset is None:
            return 0
        return _I64.unpack(self.memory.read(interp_addr + self.interp_id_offset, 8))[0]

    def forget_interpreters(self) -> None:
        """Walk the whole interpreter list next time (a read failed: the process may be changing)."""
        self._sole_interpreter = 0


#: facts.interpreter_list -> offset of the interpreter list head from the root address
#: (``_PyRuntime.interpreters.head``, or 0: before 3.7 the root is ``interp_head`` itself).
_HEAD_OFFSET = {"runtime": lambda layout: layout._PyRuntimeState.interpreters_head,
                "interp_head": lambda layout: 0}
#: facts.interpreter_list -> offset of the main interpreter from the root, None where not kept.
_MAIN_OFFSET = {"runtime": lambda layout: layout._PyRuntimeState.get("interpreters_main"),
                "interp_head": lambda layout: None}
