"""Native mode of a snapshot: every thread's C frames merged with its Python frames.

``Target`` calls ``unwind`` while the target is paused (registers exist only
then, and the stacks must be those of the Python frames just read), and
``apply`` afterwards to turn the walker's threads into merged ones: matched
by OS thread id, the eval-loop frames replaced by the Python frames they run
(``merge.merge``), the thread's status read from its innermost native frames
(``status.native_status``; a thread waiting for the GIL is active, not idle),
and, with ``native_all``, the threads Python never saw (started by C).
Model frames of native frames are interned: a sampler meets the same few
hundred again and again.
"""
from __future__ import annotations


from ..model import Frame, ThreadStack
from .frame import NativeFrame, to_model_frame
from .merge import ANY_VERSION, EvalNames, merge, native_only
from .status import WAITING_FOR_GIL, native_status

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Iterable, List, Optional, Sequence, Tuple


#: Interned native model frames kept before the table is emptied.
MAX_INTERNED = 50_000


class NativeThreads:
    """Merges one process's native stacks into its snapshots (caches across samples)."""

    def __init__(self, process, max_depth: int = 512, eval_names: EvalNames = ANY_VERSION):
        self.process = process
        self.max_depth = max_depth
        self.eval_names = eval_names   # the target version's eval loop (merge.eval_names_of)
        self._frames: Dict[Tuple[int, str, str], Frame] = {}

    def unwind(self, tids: Iterable[int]) -> Dict[int, Tuple[List[NativeFrame], str]]:
        """``{tid: (native frames, why the unwind stopped)}`` of stopped threads."""
        from . import native_stacks_with_reasons
        return native_stacks_with_reasons(self.process, tids, self.max_depth)

    def model_frame(self, frame: NativeFrame) -> Frame:
        key = (frame.address, frame.name, frame.module)
        found = self._frames.get(key)
        if found is None:
            found = to_model_frame(frame)
            if len(self._frames) > MAX_INTERNED:
                self._frames.clear()
            self._frames[key] = found
        return found

    def apply(self, threads: Sequence[ThreadStack], stacks: Dict[int, Tuple[List[NativeFrame], str]],
              native_all: bool = False, states: Optional[Dict[int, str]] = None) -> List[ThreadStack]:
        """``threads`` with native frames merged in; with ``native_all`` also the threads
        without a Python thread state (their native frames only)."""
        out: List[ThreadStack] = []
        seen = set()
        for thread in threads:
            entry = stacks.get(thread.native_id) if thread.native_id else None
            if entry is None:
                why = ("no OS thread id known for this thread" if not thread.native_id
                       else "its registers could not be read")
                out.append(_replace(thread, native_error="no native frames: " + why))
                continue
            seen.add(thread.native_id)
            out.append(self._merged(thread, entry[0], native_all))
        if native_all:
            for tid in sorted(set(stacks) - seen):
                frames, _ = stacks[tid]
                state = (states or {}).get(tid)
                status = native_status(frames)
                out.append(ThreadStack(thread_id=tid, native_id=tid, name=self._thread_name(tid),
                                       holds_gil=False, is_idle=state is not None and state != "R",
                                       frames=tuple(self.model_frame(f) for f in native_only(frames, native_all)),
                                       status=status))
        return out

    def _merged(self, thread: ThreadStack, native: List[NativeFrame], native_all: bool) -> ThreadStack:
        result = merge(native, thread.frames, native_all, eval_names=self.eval_names)
        status = native_status(native)
        if result.merged:
            frames = tuple(f if isinstance(f, Frame) else self.model_frame(f) for f in result.frames)
            error = None
        else:
            frames, error = thread.frames, result.reason
        idle = thread.is_idle and status != WAITING_FOR_GIL
        return _replace(thread, frames=frames, status=status or thread.status, native_error=error, is_idle=idle)

    def _thread_name(self, tid: int) -> Optional[str]:
        get = getattr(self.process, "thread_name", None)
        from ..errors import SnapshotError
        try:
            return get(tid) if get is not None else None
        except (SnapshotError, OSError):   # a name is a nicety: a source without one is fine
            return None


def _replace(thread: ThreadStack, **changes) -> ThreadStack:
    from layouts.records import replace
    return replace(thread, **changes)
