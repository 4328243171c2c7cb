"""What one native frame is: an address, where it is, and what it is called."""
from __future__ import annotations

import os
from layouts.records import dataclass

from ..hostcompat import FROZEN as _FROZEN

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional


@dataclass(**_FROZEN)
class NativeFrame:
    """One physical native frame, innermost first in a stack.

    ``symbol`` is the function whose symbol covers ``address`` (None when no
    symbol does); ``nearest`` is the closest preceding symbol when only that
    is known, with ``offset`` from its start (never presented as the
    function's own name).  ``module`` is the library's path as the target
    maps it ('' for anonymous memory such as JIT code or perf trampolines).
    ``how`` says where the rule for this frame's CFA (and so its caller)
    came from: "cfi", "capstone", "frame-pointer", or "" when there was none.
    """

    address: int
    symbol: Optional[str]
    offset: int
    module: str
    build_id: str = ""
    nearest: Optional[str] = None
    signal_frame: bool = False
    how: str = ""

    @property
    def name(self) -> str:
        """``qsort_r`` when the symbol is known; ``function+0x54`` with only the nearest;
        ``0x7f...`` without either."""
        if self.symbol is not None:
            return self.symbol
        if self.nearest is not None:
            return "%s+0x%x" % (self.nearest, self.offset)
        return "0x%x" % self.address

    @property
    def library(self) -> str:
        return os.path.basename(self.module) if self.module else "[anonymous]"

    def describe(self) -> str:
        """``function+0xoff (library)`` as one line of a backtrace."""
        if self.symbol is not None:
            where = "%s+0x%x" % (self.symbol, self.offset)
        elif self.nearest is not None:
            where = "?? (after %s+0x%x)" % (self.nearest, self.offset)
        else:
            where = "??"
        return "0x%016x %s (%s)" % (self.address, where, self.library)


def to_model_frame(frame: NativeFrame):
    """The model's ``Frame`` for a native frame: ``is_native``, the symbol as ``function`` (or
    ``function+0x54`` / ``0x7f...``), the library path as ``module`` and ``filename``, line 0."""
    from ..model import Frame
    try:
        return Frame(frame.name, frame.module, 0, None, True, module=frame.module, address=frame.address)
    except TypeError:   # a model without ``address`` (older snapshot files' reader)
        return Frame(frame.name, frame.module, 0, None, True, module=frame.module)
