"""``<task NAME>`` frames in a sampled stack (``record --async``).

Why a module of its own: only a sampler that follows asyncio tasks needs it, so the hot path
of every other sample never imports it.
"""
from __future__ import annotations

from ..model import Frame

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict

#: Task frames kept by name (the same name gives the same Frame: a profile interns it once).
MAX_TASK_FRAMES = 65536


def with_task_frames(raw_frames, marks, build, with_locals: bool, max_repr: int, max_depth: int) -> tuple:
    """Model frames with ``<task NAME>`` right outside each running task's coroutine frame.

    Innermost first, so the synthetic frame sits between the event loop's
    frames and the task's coroutines: flame graphs group time by task, as
    CPython 3.15's ``--async-aware`` sampler does.
    """
    out = []
    for raw in raw_frames:
        out.append(build(raw, with_locals, max_repr, max_depth))
        name = marks.get(raw.frame_addr)
        if name is not None:
            out.append(task_frame(name))
    return tuple(out)


_TASK_FRAMES: Dict[str, Frame] = {}


def task_frame(name: str) -> Frame:
    """The one ``<task NAME>`` frame of a task name."""
    frame = _TASK_FRAMES.get(name)
    if frame is None:
        if len(_TASK_FRAMES) > MAX_TASK_FRAMES:
            _TASK_FRAMES.clear()
        frame = _TASK_FRAMES[name] = Frame("<task %s>" % name, "", 0)
    return frame


__all__ = ["task_frame", "with_task_frames"]
