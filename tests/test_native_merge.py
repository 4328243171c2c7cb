"""Merge and native status on synthetic stacks, for every frame-marker scheme."""
from __future__ import annotations

from collections import namedtuple

import pytest

from snapshot.native.frame import NativeFrame
from snapshot.native.merge import merge, native_only
from snapshot.native.status import COLLECTING_GARBAGE, UNKNOWN, WAITING_FOR_GIL, native_status

Py = namedtuple("Py", "function is_entry")
LIBPY = "/opt/python/lib/libpython3.12.so.1.0"
EXE = "/usr/bin/python3.11"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
EXT = "/tmp/libnative_blocker.so"


def nf(name, module=LIBPY, nearest=None):
    return NativeFrame(0x1000, name, 0, module, "", nearest=nearest)


def names(result):
    return [f.function if isinstance(f, Py) else f.symbol for f in result.frames]


START = [nf("Py_RunMain"), nf("Py_BytesMain"), nf("__libc_start_call_main", LIBC), nf("__libc_start_main", LIBC),
         nf("_start", EXE)]


def test_one_python_frame_per_eval_call_before_311():
    native = [nf("__select", LIBC), nf("select_select"), nf("cfunction_vectorcall_FASTCALL"),
              nf("_PyEval_EvalFrameDefault"), nf("_PyFunction_Vectorcall"),
              nf("_PyEval_EvalFrameDefault.cold"), nf("PyEval_EvalCode")] + START
    python = [Py("inner", False), Py("outer", False)]
    result = merge(native, python, every_frame_is_entry=True)
    assert result.merged and result.reason is None
    assert names(result) == ["__select", "select_select", "inner", "outer"]


def test_old_eval_frame_ex_name():
    native = [nf("PyEval_EvalFrameEx"), nf("PyEval_EvalCodeEx")]
    assert names(merge(native, [Py("f", True)])) == ["f"]


def test_eval_loop_names_come_from_the_layout():
    """3.6+'s ``PyEval_EvalFrameEx`` only jumps to ``_PyEval_EvalFrameDefault`` (through
    ``interp->eval_frame``): a thread paused on it has not entered its frame yet, so with the
    version's names it is plumbing and the stack still merges; 2.7's eval loop is that name."""
    from layouts import get_layout
    from snapshot.native.merge import eval_names_of
    v36, v27, v314 = (eval_names_of(get_layout(v)) for v in ((3, 6), (2, 7), (3, 14)))
    native = [nf("PyEval_EvalFrameEx"), nf("_PyEval_EvalCodeWithName"), nf("call_function"),
              nf("_PyEval_EvalFrameDefault"), nf("PyEval_EvalCode")] + START
    python = [Py("caller", True)]
    assert not merge(native, python).merged          # without the version: two eval frames, one Python frame
    result = merge(native, python, eval_names=v36)
    assert result.merged and names(result) == ["caller"]
    old = [nf("PyEval_EvalFrameEx", "/x/libpython2.7.so.1.0"), nf("PyEval_EvalCodeEx", "/x/libpython2.7.so.1.0"),
           nf("PyEval_EvalFrameEx", "/x/libpython2.7.so.1.0")]
    assert names(merge(old, [Py("f", True), Py("main", True)], eval_names=v27)) == ["f", "main"]
    assert not merge(old, [Py("f", True)], eval_names=v36).merged
    tail = [nf("_TAIL_CALL_LOAD_ATTR.llvm.1"), nf("PyEval_EvalCode")]
    assert merge(tail, [Py("g", True)], eval_names=v314).merged
    assert not merge(tail, [Py("g", True)], eval_names=v36).merged


def test_is_entry_311_groups_frames():
    """3.11: one eval call runs several frames; the outermost of each group is the entry frame."""
    native = [nf("clock_nanosleep", LIBC), nf("time_sleep"), nf("_PyEval_EvalFrameDefault"),
              nf("method_vectorcall"), nf("thread_run"), nf("_PyEval_EvalFrameDefault"),
              nf("PyEval_EvalCode")] + START
    python = [Py("c", False), Py("b", False), Py("a", True), Py("z", False), Py("main", True)]
    result = merge(native, python)
    assert names(result) == ["clock_nanosleep", "time_sleep", "c", "b", "a", "z", "main"]


def test_312_shim_scheme_and_c_in_between():
    """3.12/3.13 (shim frames) and 3.14+ (owner INTERPRETER): the walker marks the entry frames;
    the merge keeps C frames of other libraries between the groups (ctypes qsort)."""
    native = [nf("__futex_abstimed_wait_common", LIBC), nf("PyThread_acquire_lock_timed"), nf("acquire_timed"),
              nf("lock_PyThread_acquire_lock"), nf("_PyEval_EvalFrameDefault"),
              nf("_PyFunction_Vectorcall"), nf("_CallPythonObject", "/x/_ctypes.so"),
              nf("ffi_closure_unix64_inner", "/x/libffi.so.8"), nf("msort_with_tmp.part.0", LIBC),
              nf("qsort_r", LIBC), nf("ffi_call", "/x/libffi.so.8"), nf("PyCFuncPtr_call", "/x/_ctypes.so"),
              nf("_PyObject_MakeTpCall"), nf("_PyEval_EvalFrameDefault"), nf("thread_run"),
              nf("start_thread", LIBC), nf("clone3", LIBC)]
    python = [Py("compare", True), Py("sorter", False), Py("run", True)]
    assert names(merge(native, python)) == [
        "__futex_abstimed_wait_common", "PyThread_acquire_lock_timed", "lock_PyThread_acquire_lock",
        "compare", "_CallPythonObject", "ffi_closure_unix64_inner", "msort_with_tmp.part.0", "qsort_r",
        "ffi_call", "PyCFuncPtr_call", "sorter", "run"]


def test_tail_call_interpreter_314():
    native = [nf("_TAIL_CALL_CALL_BUILTIN_FAST.llvm.123"), nf("_TAIL_CALL_LOAD_ATTR"), nf("_PyEval_Vector"),
              nf("PyEval_EvalCode")]
    python = [Py("f", False), Py("g", True), Py("main", True)]
    assert names(merge(native, python)) == ["f", "g", "main"]


def test_native_all_keeps_plumbing():
    native = [nf("time_sleep"), nf("cfunction_vectorcall_O"), nf("_PyEval_EvalFrameDefault"),
              nf("PyEval_EvalCode")] + START
    result = merge(native, [Py("main", True)], native_all=True)
    assert names(result) == ["time_sleep", "cfunction_vectorcall_O", "main", "PyEval_EvalCode", "Py_RunMain",
                             "Py_BytesMain", "__libc_start_call_main", "__libc_start_main", "_start"]


@pytest.mark.parametrize("evals, pyframes", [
    (1, [Py("a", True), Py("b", True)]),            # native unwind truncated
    (3, [Py("a", True), Py("b", True)]),            # one eval call too many
    (0, [Py("a", True)]),                           # no eval frame named (stripped, tail-call)
])
def test_counts_that_do_not_match_give_the_python_stack(evals, pyframes):
    native = [nf("clock_nanosleep", LIBC)] + [nf("_PyEval_EvalFrameDefault")] * evals + START
    result = merge(native, pyframes)
    assert not result.merged and result.frames == tuple(pyframes)
    assert "%d eval-loop native frames for %d Python entry frames" % (evals, len(pyframes)) in result.reason


def test_truncated_python_stack_is_not_merged():
    native = [nf("_PyEval_EvalFrameDefault")]
    result = merge(native, [Py("a", False)])
    assert not result.merged and "truncated" in result.reason


def test_no_native_frames():
    result = merge([], [Py("a", True)])
    assert not result.merged and result.reason == "no native frames"


def test_thread_without_python():
    native = [nf("clock_nanosleep", LIBC), nf("__nanosleep", LIBC), nf("c_thread_wait", EXT),
              nf("c_thread_main", EXT), nf("start_thread", LIBC), nf("clone3", LIBC)]
    assert [f.symbol for f in native_only(native)] == ["clock_nanosleep", "__nanosleep", "c_thread_wait",
                                                        "c_thread_main"]
    assert len(native_only(native, native_all=True)) == 6
    # a C thread's stack without Python frames merges trivially
    assert merge(native, []).merged


# -- status ---------------------------------------------------------------------------------------------
def test_status_waiting_for_gil():
    for chain in (["take_gil"], ["take_gil.isra.0", "PyEval_RestoreThread"], ["_PyThreadState_Attach"],
                  ["PyEval_AcquireThread"], ["PyGILState_Ensure"]):
        frames = [nf("__futex_abstimed_wait_common", LIBC), nf("pthread_cond_timedwait", LIBC)] + \
            [nf(n) for n in chain] + [nf("_PyEval_EvalFrameDefault")]
        assert native_status(frames) == WAITING_FOR_GIL, chain


def test_status_27_eval_loop_takes_the_gil_itself():
    """2.7: the eval loop re-takes the interpreter lock with PyThread_acquire_lock; a Python
    ``lock.acquire()`` goes through lock_PyThread_acquire_lock and is no GIL wait."""
    lib = "/x/libpython2.7.so.1.0"
    wait = [nf("__new_sem_wait_slow64", LIBC), nf("PyThread_acquire_lock", lib)]
    assert native_status(wait + [nf("PyEval_EvalFrameEx", lib)]) == WAITING_FOR_GIL
    assert native_status(wait + [nf("lock_PyThread_acquire_lock", lib), nf("PyEval_EvalFrameEx", lib)]) is None
    assert native_status(wait + [nf("PyEval_RestoreThread", lib), nf("time_sleep", lib),
                                 nf("PyEval_EvalFrameEx", lib)]) == WAITING_FOR_GIL


def test_status_stripped_named_caller_decides():
    frames = [nf("pthread_cond_timedwait", LIBC), nf(None, EXE, nearest="_PyUnicode_Copy"),
              nf("PyEval_RestoreThread", EXE), nf("_PyEval_EvalFrameDefault", EXE)]
    assert native_status(frames) == WAITING_FOR_GIL


def test_status_stripped_unknown_never_guessed():
    frames = [nf("clock_nanosleep", LIBC), nf(None, EXE, nearest="PyObject_GenericGetAttr"),
              nf("PyObject_Vectorcall", EXE), nf("_PyEval_EvalFrameDefault", EXE)]
    assert native_status(frames) == UNKNOWN


def test_status_gc_and_nothing():
    assert native_status([nf("visit_decref"), nf("gc_collect_main"), nf("_PyEval_EvalFrameDefault")]) == \
        COLLECTING_GARBAGE
    assert native_status([nf("dict_traverse"), nf("collect.constprop.0"), nf("_PyObject_GC_Link")]) == \
        COLLECTING_GARBAGE
    assert native_status([nf("clock_nanosleep", LIBC), nf("time_sleep"), nf("_PyEval_EvalFrameDefault")]) is None
    # GC below the innermost eval frame is not what the thread does now
    assert native_status([nf("time_sleep"), nf("_PyEval_EvalFrameDefault"), nf("gc_collect_main")]) is None


def test_perf_trampolines_are_plumbing():
    native = [nf("time_sleep"), nf("_PyEval_EvalFrameDefault"), nf(None, ""), nf("py_trampoline_evaluator"),
              nf("PyEval_EvalCode")]
    assert names(merge(native, [Py("main", True)])) == ["time_sleep", "main"]
    assert None in names(merge(native, [Py("main", True)], native_all=True))


def test_native_threads_apply_matches_by_os_id_and_sets_status():
    """``NativeThreads.apply`` (what ``Target.snapshot(native=True)`` runs): threads matched by
    OS id, eval frames replaced by Python frames, a GIL waiter active, C-only threads with
    ``native_all`` only, and a thread whose stacks do not merge keeps its Python frames."""
    from snapshot.model import Frame, ThreadStack
    from snapshot.native.threads import NativeThreads

    class Source:
        def thread_name(self, tid):
            return "c-%d" % tid

    work = Frame("work", "/srv/app.py", 3, is_entry=True)
    waiter = ThreadStack(1, 11, "MainThread", False, True, (work,))
    unmatched = ThreadStack(2, 12, "t2", False, True, (Frame("a", "/srv/app.py", 1, is_entry=True),
                                                       Frame("b", "/srv/app.py", 2, is_entry=True)))
    stacks = {
        11: ([nf("__futex_abstimed_wait_common", LIBC), nf("take_gil"), nf("PyEval_RestoreThread"),
              nf("_PyEval_EvalFrameDefault"), nf("PyEval_EvalCode")] + START, "outermost"),
        12: ([nf("clock_nanosleep", LIBC), nf("_PyEval_EvalFrameDefault")], "outermost"),
        13: ([nf("clock_nanosleep", LIBC), nf("c_thread_main", EXT), nf("start_thread", LIBC)], "outermost"),
    }
    merger = NativeThreads(Source())
    out = merger.apply([waiter, unmatched], stacks, native_all=False, states={13: "S"})
    assert [t.native_id for t in out] == [11, 12]
    first = out[0]
    assert [f.function for f in first.frames] == ["__futex_abstimed_wait_common", "take_gil",
                                                   "PyEval_RestoreThread", "work"]
    assert first.frames[0].is_native and first.frames[0].module == LIBC and first.frames[-1] is work
    assert first.status == WAITING_FOR_GIL and not first.is_idle and first.native_error is None
    assert out[1].frames == unmatched.frames and out[1].native_error.startswith("cannot merge")
    every = merger.apply([waiter], stacks, native_all=True, states={13: "S"})
    c_thread = [t for t in every if t.native_id == 13]
    assert len(c_thread) == 1 and c_thread[0].name == "c-13" and c_thread[0].is_idle
    assert [f.function for f in c_thread[0].frames] == ["clock_nanosleep", "c_thread_main", "start_thread"]
    assert [t.native_id for t in every] == [11, 12, 13]


def test_plt_stub_of_the_interpreter_is_kept():
    """A thread stopped in the interpreter's PLT stub is on its way out to a library: shown."""
    native = [nf("clock_nanosleep@plt"), nf("time_sleep"), nf("cfunction_vectorcall_O"),
              nf("_PyEval_EvalFrameDefault")] + START
    assert names(merge(native, [Py("nap", True)])) == ["clock_nanosleep@plt", "time_sleep", "nap"]


def test_name_scans_match_their_patterns():
    """``base_name`` and ``is_interpreter_module`` scan by hand what these patterns say."""
    import os
    import random
    import re

    from snapshot.native.merge import base_name, is_interpreter_module
    suffix = re.compile(r"(\.(cold|part|isra|constprop|lto_priv|localalias|llvm)(\.\d+)?)+$")
    interpreter = re.compile(r"^(lib)?python\d")
    rng = random.Random(5)
    words = ["cold", "part", "isra", "constprop", "lto_priv", "localalias", "llvm", "0", "12", "x", "", "col"]
    names = ["_PyEval_EvalFrameDefault.cold.12", "f.part.0.isra.0", "f.part.1.2", "x.llvm.123.cold", ".cold", "f."]
    names += [rng.choice(["f", "_Py", "", "a.b"]) + "".join("." + rng.choice(words) for _ in range(rng.randint(0, 4)))
              for _ in range(20000)]
    for name in names:
        assert base_name(name) == suffix.sub("", name), name
    paths = ["/usr/bin/python3.11", "/x/libpython3.12.so.1.0", "python", "libpython", "liblibpython3", "/a/lib/python3"]
    paths += ["/d/" + "".join(rng.choice("libpython3x.") for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    for path in paths:
        assert is_interpreter_module(path) == bool(interpreter.match(os.path.basename(path))), path
