"""What a thread is doing, read from its innermost native frames: waiting for the GIL, collecting garbage.

Only the frames inside the innermost eval-loop call count (below it the
thread runs Python code).  A stripped interpreter (Debian's
``/usr/bin/python3.11``: ``.dynsym`` only) cannot name its static
functions (``take_gil``, ``gc_collect_main``): when an unnamed
interpreter frame sits there and no named function decides, the answer is
``UNKNOWN``, never a guess.  A named caller still decides:
``PyEval_RestoreThread`` over an unnamed frame is a GIL wait whatever the
unnamed frame is.  2.7's eval loop takes the GIL itself (``PyThread_acquire_lock`` of the
interpreter lock, called straight from ``PyEval_EvalFrameEx``; Python-level locks go through
``lock_PyThread_acquire_lock``, and 3.x's eval loop calls ``take_gil``): that call is a GIL wait.
"""
from __future__ import annotations


from .merge import base_name, is_eval_frame, is_interpreter_module

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional, Sequence


WAITING_FOR_GIL = "waiting for the GIL"
COLLECTING_GARBAGE = "collecting garbage"
UNKNOWN = "unknown"

#: The lock acquire that is a GIL wait when the eval loop calls it directly (2.7).
EVAL_LOOP_LOCK = "PyThread_acquire_lock"
#: Functions that block only to take the GIL (3.8-3.15).
GIL_FUNCTIONS = frozenset(("take_gil", "PyEval_RestoreThread", "PyEval_AcquireThread", "PyEval_AcquireLock",
                           "_PyEval_AcquireLock", "PyGILState_Ensure", "_PyThreadState_Attach"))
GC_FUNCTIONS = frozenset(("collect", "collect_with_callback", "collect_generations", "gc_collect_main",
                          "gc_collect_with_callback", "gc_collect_full", "gc_collect_young",
                          "gc_collect_increment", "gc_collect_region", "_PyGC_Collect", "PyGC_Collect",
                          "_PyObject_GC_Link", "gc_collect_impl", "_Py_RunGC"))


def native_status(frames: Sequence) -> Optional[str]:
    """``WAITING_FOR_GIL``, ``COLLECTING_GARBAGE``, ``UNKNOWN`` or None (nothing special),
    from a thread's native frames (innermost first)."""
    unnamed = False
    name = None
    for frame in frames:
        if is_eval_frame(frame):
            if name == EVAL_LOOP_LOCK:
                return WAITING_FOR_GIL
            break
        name = base_name(frame.symbol)
        if name is None:
            if is_interpreter_module(frame.module):
                unnamed = True
            continue
        if name in GIL_FUNCTIONS or (name.startswith("take_gil")):
            return WAITING_FOR_GIL
        if name in GC_FUNCTIONS or name.startswith("gc_collect"):
            return COLLECTING_GARBAGE
    return UNKNOWN if unnamed else None
