"""Merging native and Python frames into one stack (a pure function, unit-tested on synthetic input).

Each eval-loop native frame (the version's ``layout.facts.frames.eval_functions``:
``_PyEval_EvalFrameDefault`` from 3.6, ``PyEval_EvalFrameEx`` in 2.7; the 3.14+
tail-call interpreter's ``_TAIL_CALL_*`` functions) runs the Python frames from the one after the previous entry
frame up to and including the next *entry* frame (``Frame.is_entry``:
every frame before 3.11, ``is_entry`` in 3.11, the frame over the C-stack
owner shim in 3.12-3.13, owner INTERPRETER in 3.14+; the walker decides).
So, both lists innermost first, each eval frame is replaced by its Python
frames.  The interpreter's own plumbing (vectorcall, call helpers, the
start-up chain) is hidden unless ``native_all``.

If the number of eval frames differs from the number of entry frames the
two lists cannot be matched without guessing; then the Python stack is
returned unchanged with the reason (never a wrong interleaving).
"""
from __future__ import annotations

import os

from layouts.records import NamedRow

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Callable, List, Optional, Sequence, Tuple


#: Suffixes the compiler gives function copies (``name.cold``, ``name.isra.0``...), stripped by
#: ``base_name`` (a hand scan: ``re`` would be a warm ``dump --native``'s only user of it and enum).
_SUFFIXES = frozenset(("cold", "part", "isra", "constprop", "lto_priv", "localalias", "llvm"))
#: Interpreter functions kept in the merged stack: where a thread really waits or works.
KEEP_PREFIXES = ("time_", "sys_", "gc_", "os_", "select_", "sock_", "sre_", "lock_", "rlock_", "PyThread_",
                 "PyGILState_", "take_gil", "drop_gil", "PyEval_RestoreThread", "PyEval_AcquireThread",
                 "_PyThreadState_Attach", "zlib_", "unicode_", "stringio_", "thread_PyThread")
#: Outside the interpreter: thread and process start-up, never interesting.
START_FUNCTIONS = frozenset(("_start", "__libc_start_main", "__libc_start_call_main", "__libc_start_main_impl",
                             "start_thread", "clone", "clone3", "__clone", "__clone3"))


class MergeResult(NamedRow):
    """``frames`` innermost first, Python frames (the walker's objects) and ``NativeFrame``s mixed;
    ``merged`` False means ``frames`` is the Python stack alone and ``reason`` says why."""

    frames: tuple
    merged: bool
    reason: Optional[str] = None


def base_name(name: Optional[str]) -> Optional[str]:
    """``_PyEval_EvalFrameDefault.cold.12`` -> ``_PyEval_EvalFrameDefault``: every trailing
    ``.cold``, ``.part``, ``.isra``, ``.constprop``, ``.lto_priv``, ``.localalias`` or ``.llvm``,
    each with an optional ``.NUMBER`` after it."""
    if not name or "." not in name:
        return name
    end = len(name)
    while True:
        head, dot, last = name[:end].rpartition(".")
        if not dot:
            break
        if last in _SUFFIXES:
            end = len(head)
            continue
        if last and last.isascii() and last.isdigit():
            before, dot2, word = head.rpartition(".")
            if dot2 and word in _SUFFIXES:
                end = len(before)
                continue
        break
    return name[:end]


def is_interpreter_module(path: str) -> bool:
    """The python executable or libpython (not extension modules)."""
    if not path:
        return False
    name = os.path.basename(path)
    name = name[3:] if name.startswith("libpython") else name
    return name.startswith("python") and name[6:7].isascii() and name[6:7].isdigit()


#: (symbol, module, eval names) -> (is an eval frame, is plumbing): a sampler classifies the same
#: few hundred functions again and again (bounded: emptied when it grows past ``_KINDS_MAX``).
_KINDS: dict = {}
_KINDS_MAX = 100_000


class EvalNames(NamedRow):
    """The eval-loop functions of one version (``layout.facts.frames``: ``eval_functions``,
    ``eval_prefixes``); ``ANY_VERSION`` when the version is not known."""

    functions: Tuple[str, ...]
    prefixes: Tuple[str, ...] = ()


#: Any version's eval loop (for callers without a layout: a frame named like one of them).
ANY_VERSION = EvalNames(("_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx"), ("_TAIL_CALL_",))


def eval_names_of(layout) -> EvalNames:
    """The eval-loop names a layout declares."""
    frames = layout.facts.frames
    return EvalNames(tuple(frames.eval_functions), tuple(frames.eval_prefixes))


def _kind(frame, names: EvalNames = ANY_VERSION) -> tuple:
    key = (frame.symbol, frame.module, names)
    found = _KINDS.get(key)
    if found is None:
        name = base_name(frame.symbol)
        evals = bool(name) and (name in names.functions or name.startswith(names.prefixes))
        if is_interpreter_module(frame.module):
            # a PLT stub (``clock_nanosleep@plt``) is the interpreter calling out to a library:
            # where the thread is, not plumbing
            plumbing = not (name and (name.startswith(KEEP_PREFIXES) or name.endswith("@plt")))
        else:
            plumbing = name in START_FUNCTIONS
        if len(_KINDS) > _KINDS_MAX:
            _KINDS.clear()
        found = _KINDS[key] = (evals, plumbing)
    return found


def is_eval_frame(frame, names: EvalNames = ANY_VERSION) -> bool:
    """Does this native frame run Python frames (an eval-loop call)?"""
    return _kind(frame, names)[0]


def is_plumbing(frame) -> bool:
    """Native frames hidden from the merged stack unless ``native_all``."""
    return _kind(frame)[1]


def merge(native: Sequence[Any], python: Sequence[Any], native_all: bool = False,
          is_entry: Optional[Callable[[Any], bool]] = None, every_frame_is_entry: bool = False,
          eval_names: EvalNames = ANY_VERSION) -> MergeResult:
    """One stack from native frames and Python frames, both innermost first.

    ``is_entry(frame)`` says whether a Python frame was the first one its
    eval call ran (default: ``frame.is_entry``); ``every_frame_is_entry``
    is for interpreters before 3.11, whose eval loop runs one frame per call.
    ``eval_names``: the target version's eval loop (``eval_names_of(layout)``).
    """
    if is_entry is None:
        is_entry = (lambda f: True) if every_frame_is_entry else (lambda f: bool(getattr(f, "is_entry", False)))
    kinds = [_kind(f, eval_names) for f in native]
    evals = sum(1 for k in kinds if k[0])
    entries = sum(1 for f in python if is_entry(f))
    if python and not native:
        return MergeResult(tuple(python), False, "no native frames")
    if python and not is_entry(python[-1]):
        return MergeResult(tuple(python), False,
                           "the outermost Python frame is not an entry frame (the Python stack is truncated)")
    if evals != entries:
        return MergeResult(tuple(python), False,
                           "cannot merge: %d eval-loop native frames for %d Python entry frames" % (evals, entries))
    out: List[Any] = []
    index = 0
    for position, frame in enumerate(native):
        if kinds[position][0]:
            while index < len(python):
                py = python[index]
                out.append(py)
                index += 1
                if is_entry(py):
                    break
        elif native_all or not (kinds[position][1] or _is_trampoline(native, position)):
            out.append(frame)
    return MergeResult(tuple(out), True, None)


def _is_trampoline(native: Sequence[Any], position: int) -> bool:
    """A perf trampoline (``-X perf``): anonymous code called by the interpreter itself
    (``py_trampoline_evaluator``, or whatever inlined it: LTO builds devirtualize the call)."""
    frame = native[position]
    if frame.module or position + 1 >= len(native):
        return False
    return is_interpreter_module(native[position + 1].module)


def native_only(native: Sequence[Any], native_all: bool = False) -> tuple:
    """A thread without Python frames (started by C, never registered): its native frames,
    plumbing hidden unless ``native_all``."""
    return tuple(f for f in native if native_all or not is_plumbing(f))
