"""The walker's raw frames and threads: what memory said, before the model is built.

Why apart: the walker, the copy step, the coroutine reader and the remembered tails all pass
these around; a remembered ``RawFrame`` is shared between walks and never changed once kept
(``copy_frame`` makes the changed copy).
"""
from __future__ import annotations


from layouts.records import dataclass

from .codecache import CodeInfo

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Tuple


class RawFrame:
    """One Python frame as found in memory, before it becomes a model.Frame."""

    __slots__ = ("code", "line", "frame_addr", "localsplus", "globals_addr", "code_addr", "offset", "is_entry",
                 "model")

    def __init__(self, code: CodeInfo, line: int, frame_addr: int, localsplus: Optional[Tuple[int, ...]] = None,
                 globals_addr: int = 0, code_addr: int = 0, offset: int = 0, is_entry: bool = False):
        self.code = code
        self.line = line
        self.frame_addr = frame_addr
        self.localsplus = localsplus  # slot values, when locals (or self/cls) were asked for
        self.globals_addr = globals_addr  # the frame's globals dict, when locals were asked for
        self.code_addr = code_addr  # to resolve the frame again if the cached code object was stale
        self.offset = offset  # bytecode offset the line was computed from
        self.is_entry = is_entry  # an eval-loop call started with this frame
        self.model = None  # its stack-only model.Frame, kept by FrameBuilder for a remembered frame


@dataclass
class RawThread:
    tstate_addr: int
    thread_id: int
    native_id: Optional[int]
    frames: List[RawFrame]
    truncated: bool = False
    #: the remembered tail (``tails.Tail``) that ``frames[1:]`` are, when the walk used one
    tail: Optional[object] = None


def copy_frame(frame: RawFrame, is_entry: bool) -> RawFrame:
    """A remembered frame's copy with another entry mark (the remembered one stays as it was)."""
    return RawFrame(frame.code, frame.line, frame.frame_addr, frame.localsplus, frame.globals_addr,
                    frame.code_addr, frame.offset, is_entry)


__all__ = ["RawFrame", "RawThread", "copy_frame"]
