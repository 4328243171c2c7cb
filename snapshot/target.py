"""The composition root: one target process, found once, then snapshots and samples on demand.

``Target`` ties the seams together: a ``Process`` (a live pid through
``LiveProcess``, or any other source), the ``Interpreter`` found by discovery,
the ``Layout`` of its version (overlaid with the target's own debug offsets
from 3.13), the ``Walker``, and the caches that make the second snapshot
cheaper than the first.  Thread facts (GIL, names, OS ids) live in
``threads``, model frames and locals in ``frames``.
"""
from __future__ import annotations

import time
from layouts.records import replace

from layouts import UnknownLayoutError, with_debug_offsets

from .budget import WorkBudget
from .walk.codecache import CodeCache
from .discovery import Interpreter, locate
from .errors import (CorruptDataError, MemoryReadError, NativeModeError, ProcessExitedError, SnapshotError,
                     UnsupportedVersionError)
from .frames import FrameBuilder
from .layoutcache import load_layout
from .model import Snapshot, ThreadStack
from .objects import ObjectReader
from .process.base import RUNNING_SYSCALLS, Process, syscalls_of
from .threads import ThreadFacts
from .threadstatus import ThreadStatusReader, status_of
from .walk.walker import ThreadCopy, Walker

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple

    from .steadypass import SteadyPasses


#: Whole stacks kept per remembered tail (one per innermost frame met above it).
MAX_TAIL_STACKS = 64


def attach(pid: int, memory: Optional[Process] = None, method: Optional[str] = None) -> "Target":
    """Attach to a live process by pid (``memory``: another source to read it through)."""
    if memory is not None:
        return Target(memory, method=method)
    from .process.live import LiveProcess
    process = LiveProcess(pid)
    try:
        return Target(process, method=method)
    except BaseException:
        process.close()
        raise


def attach_process(process: Process, method: Optional[str] = None) -> "Target":
    """A ``Target`` over any ``Process`` (live, image, core, debugger)."""
    return Target(process, method=method)


class Target:
    """One attached process."""

    def __init__(self, process, memory: Optional[Process] = None, method: Optional[str] = None):
        if isinstance(process, int):  # the old ``Target(pid, memory=None)`` form
            pid = process
            if memory is None:
                from .process.live import LiveProcess
                memory = LiveProcess(pid)
            process = memory
        self.process: Process = process
        self.pid = process.pid
        self.interpreter: Interpreter = locate(process, method)
        self.layout = self._layout()
        self.budget = WorkBudget()
        self.objects = ObjectReader(process, self.layout, self.budget)
        self.codes = CodeCache(process, self.layout, self.objects, self.interpreter.symbol("PyCode_Type"),
                               self.budget)
        self.walker = Walker(process, self.layout, self.interpreter.runtime_addr, self.codes, self.budget)
        self.command_line = tuple(process.command_line())
        self.thread_facts = ThreadFacts(process, self.layout, self.walker, self.interpreter.runtime_addr,
                                        self.objects, self.interpreter.symbol("_PyThreadState_Current"),
                                        dict(self.interpreter.symbols))
        self.frame_builder = FrameBuilder(process, self.layout, self.objects)
        self.objects.numpy_version_probe = self._numpy_major
        # No symbol lookups here: they would parse the ELF symbol table on every attach.
        gc_static = self.layout.facts.gc_collecting_static
        self.thread_status = ThreadStatusReader(process, self.layout, self.objects, self.interpreter.runtime_addr,
                                                gc_static_addr=self.interpreter.symbol(gc_static) if gc_static else None)
        self._interp: Optional[int] = None
        self._interp_id = 0
        self._native_threads = None
        self.samples_taken = 0
        self._want_tasks = False
        self._tasks: tuple = ()
        self._task_reader = None
        #: OS ids of the Python threads the last sample saw (a sampler not pausing reads their
        #: system calls only, instead of listing every task and reading its ``stat`` too)
        self._python_tids: Tuple[int, ...] = ()
        #: Stack-only samples: thread state address -> (RawThread, the other facts its ThreadStack
        #: was built from, that ThreadStack), from the last sample (``_build_threads``).
        self._built: Dict[int, tuple] = {}
        #: Samples mark each running asyncio task with a ``<task NAME>`` frame (``record --async``).
        self.async_aware = False
        #: Passes made from the last one (sources that re-read a plan and compare it: live), made
        #: at the first sample that can use them (a one-shot dump never imports them).
        self._steady: Optional["SteadyPasses"] = None
        self._can_steady = hasattr(process, "unchanged_outside")
        self._quick_syscalls = RUNNING_SYSCALLS in getattr(process, "capabilities", ())

    @property
    def memory(self) -> Process:
        """The source of bytes (kept for front ends written against the old name)."""
        return self.process

    # -- setup ---------------------------------------------------------------
    def _layout(self):
        version = self.interpreter.version[:2]
        try:
            layout = load_layout(version)
        except UnknownLayoutError:
            raise UnsupportedVersionError("Python %s is not supported" % self.interpreter.version_text) from None
        if layout.facts.strings.model == "py2" and self.interpreter.symbol("PyUnicodeUCS2_FromString"):
            layout = replace(layout, facts=layout.facts.narrow_unicode())
        if layout.facts.debug_offsets:
            from layouts import table_size   # 3.13+ only (layouts.debug_offsets is loaded for it)
            name = layout.facts.debug_offsets
            raw = self.process.read(self.interpreter.runtime_addr, table_size(name))
            try:
                layout = with_debug_offsets(layout, raw)
            except ValueError as e:
                raise CorruptDataError("the target's debug offsets are unusable: %s" % e) from None
        return layout

    @property
    def python_version(self) -> str:
        return self.interpreter.version_text

    @property
    def executable(self) -> str:
        return self.interpreter.executable

    def close(self) -> None:
        self.process.close()

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- snapshots -------------------------------------------------------------
    def snapshot(self, locals: bool = False, blocking: bool = True, max_repr: int = 1024,
                 max_depth: int = 6, tasks: bool = False, native: bool = False,
                 native_all: bool = False) -> Snapshot:
        """Every thread's stack, optionally with locals and asyncio tasks, in one consistent read.

        ``native``: C frames merged in (needs ``blocking`` and a source with
        registers); ``native_all``: also the interpreter's plumbing between
        Python frames, and threads Python never saw.
        """
        self._want_tasks = tasks
        try:
            return self._take(locals, blocking, max_repr, max_depth, fresh_names=True,
                              native=native or native_all, native_all=native_all)
        finally:
            self._want_tasks = False

    def sample(self, blocking: bool = True, native: bool = False, native_all: bool = False,
               idleness: bool = True) -> Snapshot:
        """The hot path: stacks only, with cached code objects and thread names.

        ``idleness=False``: the caller keeps idle threads and never looks at which they are
        (``record --idle``).  Without pausing, the OS is then asked nothing about the threads
        (no system call read per thread, a third of a one-thread sample's system calls), and
        ``is_idle`` says only what the target's own memory shows: a known wait function at
        the leaf.  Paused, the stopped threads' calls are read as always."""
        steady = self._steady
        if steady is not None and not (blocking or native or native_all or self.async_aware) and steady.serves():
            return self._from_reference(steady, idleness)
        return self._take(False, blocking, 0, 0, fresh_names=False, native=native or native_all,
                          native_all=native_all, idleness=idleness)

    def _from_reference(self, steady: "SteadyPasses", idleness: bool) -> Snapshot:
        """A sample not pausing made from the last pass (``steadypass``): the pass's one re-read
        and what changed in it, without the rest of ``_take``, which this runs every pass of a
        sampler.  When the last pass does not serve, the same pass goes on as a whole one."""
        process = self.process
        calls, states, quick = self._run_states(False, idleness)
        walker = self.walker
        walker.unpaused = True
        walker.one_shot = False
        self.budget.reset()
        process.begin_pass()
        try:
            taken_at = time.time_ns()
            threads = steady.take(states, calls)
        except (MemoryReadError, CorruptDataError):
            process.end_pass()
            self._read_failed(steady)
            return self._take(False, False, 0, 0, fresh_names=False, idleness=idleness)  # (its retry, its errors)
        if threads is None:
            return self._take(False, False, 0, 0, fresh_names=False, idleness=idleness,
                              begun=(calls, states, quick))
        process.end_pass()
        token = process.pass_token()
        if token is None:
            steady.forget()
        else:  # the next pass compares with this one's bytes
            steady.ref.token = token
        return self._snapshot_of(threads, taken_at)

    def _read_failed(self, steady: Optional["SteadyPasses"]) -> None:
        """After a read error: what the next attempt must find again (or the process is gone)."""
        if steady is not None:
            steady.forget()
        self._interp = None
        self.walker.forget_interpreters()
        self.thread_facts.forget()
        if self._gone():
            raise ProcessExitedError("process %d exited while being read" % self.pid) from None

    def _snapshot_of(self, threads, taken_at: int) -> Snapshot:
        self.samples_taken += 1
        if self.samples_taken % 256 == 0:
            if self.codes.revalidate():
                self.walker.forget_frames()
        tasks, self._tasks = self._tasks, ()
        interpreter = self.interpreter
        return Snapshot(self.pid, interpreter.version_text, interpreter.executable, taken_at, tuple(threads),
                        self.command_line, tasks=tasks)

    def _run_states(self, blocking: bool, idleness: bool):
        """(system calls, run states, quick) before a pass, for telling idle threads.  Not pausing:
        the run states and the calls of threads not running (``ThreadFacts.is_idle`` tells a GIL
        wait from other waits); a live source (RUNNING_SYSCALLS) is asked only the calls of the
        last sample's Python threads (``quick``: one read each), a new thread's when its stack
        is built.  Paused, ``_take`` reads the stopped threads' calls while paused."""
        process = self.process
        calls = {}
        quick = idleness and not blocking and self._quick_syscalls
        if blocking or not idleness:
            states = {}
        elif quick:
            calls = process.syscalls(self._python_tids or process.thread_ids())
            states = {tid: "R" if nr < 0 else "S" for tid, (nr, _) in calls.items()}
        else:
            # other sources (a debugger's inferior): run states, and the calls of those not running
            states = {t.tid: t.state for t in process.threads()}
            if hasattr(process, "syscalls"):
                calls = process.syscalls([tid for tid, st in states.items() if st != "R"])
        if not blocking and idleness and not states and self._gone():
            raise ProcessExitedError("process %d exited" % self.pid)
        return calls, states, quick

    def check_native(self, blocking: bool = True) -> None:
        """Raise ``NativeModeError`` when native frames cannot be had from this target."""
        from .process.base import PAUSABLE, REGISTERS
        capabilities = getattr(self.process, "capabilities", frozenset())
        if REGISTERS not in capabilities:
            raise NativeModeError("native frames need the threads' registers, which this source has not",
                                  "open the process live, a core with its NT_PRSTATUS notes, or a debugger")
        if not blocking and PAUSABLE in capabilities:
            raise NativeModeError.nonblocking()

    def _native(self):
        if self._native_threads is None:
            from .native.merge import eval_names_of
            from .native.threads import NativeThreads
            self._native_threads = NativeThreads(self.process, eval_names=eval_names_of(self.layout))
        return self._native_threads

    def _gone(self) -> bool:
        exists = getattr(self.process, "exists", None)
        return exists is not None and not exists()

    def _take(self, with_locals: bool, blocking: bool, max_repr: int, max_depth: int,
              fresh_names: bool, native: bool = False, native_all: bool = False,
              idleness: bool = True, begun: Optional[tuple] = None) -> Snapshot:
        """One pass.  ``begun``: (calls, states, quick) of a pass ``_from_reference`` began, which
        the last pass did not serve: it goes on as a whole pass, its re-read kept."""
        process = self.process
        if native:
            self.check_native(blocking)
        stacks = None
        if begun is None:
            calls, states, quick = self._run_states(blocking, idleness)
        else:
            calls, states, quick = begun
        # Not pausing, a read can race the target (a frame popped between two reads): one retry.
        attempts = 1 if blocking else 2
        # A pass (``begin_pass``) re-reads the last pass's reads in one call and serves this one's;
        # paused, it ends with the pause's copy, else it also serves the decoding after it.
        passes = hasattr(process, "begin_pass")
        # Not pausing, stacks only: a pass whose bytes moved only in some threads' newest frames
        # is made from the last pass (``steadypass``).
        steady = None
        if passes and self._can_steady and not (blocking or with_locals or fresh_names or native or self._want_tasks
                                                or self.async_aware):
            steady = self._steady
            if steady is None:
                from .steadypass import SteadyPasses
                steady = self._steady = SteadyPasses(self)
        copied = None
        self.walker.unpaused = not blocking
        self.walker.one_shot = fresh_names  # a snapshot: nothing kept for a next sample's walk
        for attempt in range(attempts):
            self.budget.reset()
            in_pass = False
            try:
                with (process.paused() if blocking else _NOTHING_PAUSED) as stopped:
                    threads = None
                    if begun is not None:  # its first attempt: begun, and the last pass did not serve it
                        begun, in_pass = None, True
                    elif passes:
                        process.begin_pass()  # inside the pause: the re-read sees the stopped state
                        in_pass = True
                        threads = steady.take(states, calls) if steady is not None and steady.serves() else None
                    taken_at = time.time_ns()
                    if threads is None:
                        if stopped:
                            calls = syscalls_of(process, stopped)
                            states = {tid: "S" if nr >= 0 else "R" for tid, (nr, _) in calls.items()}
                        copied = self._copy_stacks(with_locals, fresh_names, follow=blocking)
                        if self._want_tasks:
                            self._tasks = self._read_tasks(copied, with_locals, max_repr, max_depth)
                        if native:
                            # registers exist only while paused, and must match the Python frames just read
                            stacks = self._native().unwind(stopped or [t.tid for t in process.threads()])
                    if in_pass and blocking:
                        in_pass = False
                        process.end_pass()
                # The target runs again: names, method names and locals' reprs are read now,
                # so the pause never depends on how many threads have names or how big locals are.
                if threads is None:
                    decoded = [] if steady is not None else None
                    threads = self._build_threads(copied, with_locals, max_repr, max_depth,
                                                  fresh_names, states, calls, ask=quick, decoded=decoded)
                break
            except (MemoryReadError, CorruptDataError) as e:
                copied = None
                self._read_failed(steady)
                if attempt + 1 == attempts:
                    raise e
            finally:
                if in_pass:
                    process.end_pass()
        if steady is not None:
            token = process.pass_token()
            if token is None:
                steady.forget()
            elif copied is not None:  # a whole pass: the next one compares with it
                steady.keep(copied, decoded, threads, states, calls, token)
            else:  # a pass made from the reference: the next compares with this one's bytes
                steady.ref.token = token
        if stacks is not None:
            threads = self._native().apply(threads, stacks, native_all, states)
        return self._snapshot_of(threads, taken_at)

    def _copy_stacks(self, with_locals: bool, fresh_names: bool = True, follow: bool = True):
        """What must be read while paused: per interpreter (main first), the GIL word, thread
        states, and copies of the frames' memory (``Walker.copy_threads``: no code objects,
        lines or locals, so the pause is the same with or without locals); asyncio tasks too
        when asked (their coroutine chains must be consistent with the thread stacks, so those
        stacks are decoded inside the pause)."""
        walker = self.walker
        if self._interp is None:
            self._interp = walker.interpreter_addr()
            self._interp_id = walker.interpreter_id(self._interp)
        copied = []
        for interp in walker.interpreter_addrs():
            interp_id = self._interp_id if interp == self._interp else walker.interpreter_id(interp)
            head, holder = self.thread_facts.head_and_gil(interp)
            tstates = walker.thread_states(interp, head)
            if self._want_tasks or self.async_aware:
                # the task reader follows coroutine frames from the decoded stacks, inside the pause
                raw_threads = walker.walk_threads(tstates, with_locals)
            else:
                # raw words only, decoded after the pause (not paused: what the links lead to
                # outside the copies is read while decoding, no walk of them here)
                raw_threads = walker.copy_threads(tstates, follow)
            # Snapshots (not samples) also read the GC state; samples with --async the running tasks.
            collecting = self.thread_status.gc_collecting(interp) if fresh_names else False
            marks = self._task_reader_for().running_marks(interp, tstates) if self.async_aware else None
            copied.append((interp, interp_id, holder, tstates, raw_threads, collecting, marks))
        return copied

    def _build_threads(self, copied, with_locals: bool, max_repr: int, max_depth: int,
                       fresh_names: bool, states: Dict[int, str], calls=None,
                       ask: bool = False, decoded: Optional[list] = None) -> List[ThreadStack]:
        """Model threads from the copied stacks (after the pause: objects are read as they are now).

        ``ask``: ``calls`` holds the threads of the last sample; one missing from it (a new
        thread) has its system call read here, and this sample's threads are kept for the next.
        ``decoded``: gets every thread's RawThread, in order."""
        result = []
        seen_tids: List[int] = []
        # A thread whose walk handed back last sample's very RawThread (nothing it was decoded from
        # changed: ``Walker._steady_thread``) gets last sample's ThreadStack again when the other
        # facts it is made of are the same too; the same frames tuple then costs a profile one lookup.
        reuse = not with_locals and not fresh_names
        last_built, built = self._built, {}
        for interp, interp_id, holder, tstates, raw_threads, collecting, marks in copied:
            if raw_threads and isinstance(raw_threads[0], ThreadCopy):
                raw_threads = self.walker.decode_threads(raw_threads, with_locals)
            self.thread_facts.fill_native_ids(raw_threads)
            if decoded is not None:
                decoded.extend(raw_threads)
            names = self.thread_facts.names(interp, raw_threads, fresh_names)
            if ask:
                new = [t.native_id for t in raw_threads if t.native_id and t.native_id not in calls]
                if new:
                    for tid, call in self.process.syscalls(new).items():
                        calls[tid] = call
                        states[tid] = "R" if call[0] < 0 else "S"
                seen_tids.extend(t.native_id for t in raw_threads if t.native_id)
            gil = self.thread_facts.gil_span(interp) if calls else None
            tstate_raws = dict(tstates)
            for raw in raw_threads:
                if reuse and not marks:
                    native_id = raw.native_id
                    facts = (holder == raw.tstate_addr, names.get(raw.thread_id),
                             states.get(native_id) if states else None, calls.get(native_id) if calls else None,
                             gil, interp_id, collecting)
                    last = last_built.get(raw.tstate_addr)
                    if last is not None and last[0] is raw and last[1] == facts:
                        built[raw.tstate_addr] = last
                        result.append(last[2])
                        continue
                frames = self._frames_of(raw, marks, with_locals, max_repr, max_depth)
                result.append(self._stack_of(raw, frames, tstate_raws.get(raw.tstate_addr, b""),
                                             holder == raw.tstate_addr, names.get(raw.thread_id), states, calls,
                                             gil, interp_id, collecting, fresh_names))
                if reuse and not marks:
                    built[raw.tstate_addr] = (raw, facts, result[-1])
        if reuse:
            self._built = built
        if ask:
            self._python_tids = tuple(seen_tids)
        return result

    def _frames_of(self, raw, marks, with_locals: bool, max_repr: int, max_depth: int) -> tuple:
        """A RawThread's model frames, innermost first."""
        build = self.frame_builder.frame
        tail = raw.tail
        if marks:
            from .tasks.marks import with_task_frames
            return with_task_frames(raw.frames, marks, build, with_locals, max_repr, max_depth)
        if tail is None:
            return tuple(build(f, with_locals, max_repr, max_depth) for f in raw.frames)
        # below the innermost frame, a remembered tail: its models were built once
        models = tail.models
        if models is None:
            models = tail.models = tuple(build(f, False, 0, 0) for f in tail.frames)
        first = build(raw.frames[0], False, 0, 0)
        stacks = tail.stacks
        frames = stacks.get(id(first))
        if frames is None or frames[0] is not first:
            frames = (first,) + models
            if len(stacks) < MAX_TAIL_STACKS:
                stacks[id(first)] = frames
        return frames

    def _stack_of(self, raw, frames: tuple, tstate_raw: bytes, holds: bool, name: Optional[str],
                  states: Dict[int, str], calls, gil, interp_id: int, collecting: bool,
                  fresh_names: bool) -> ThreadStack:
        """The ThreadStack of a RawThread with these frames and facts."""
        status = self.thread_status
        # A thread state that says it waits for the GIL wants to run Python: active, even
        # where the source cannot name the system call it blocks in (lldb, no orig_rax).
        requested = status.gil_requested(tstate_raw)
        idle = not requested and self.thread_facts.is_idle(raw.native_id, states, frames, calls, gil, holds)
        return ThreadStack(thread_id=raw.thread_id, native_id=raw.native_id, name=name, holds_gil=holds,
                           is_idle=idle, frames=frames, interpreter_id=interp_id,
                           status=status_of(holds, requested, idle), gc_collecting=collecting,
                           exception=status.exception(tstate_raw, raw.tstate_addr) if fresh_names else None)

    def _numpy_major(self) -> Optional[int]:
        """The target's numpy major version, or None (asked once, by the first numpy value's repr)."""
        from .objects.numpyvalues import numpy_major
        return numpy_major(self.process, self.layout, self.walker.interpreter_addrs()[0], self.objects)

    def _task_reader_for(self):
        if self._task_reader is None:
            if "TaskObj" not in self.layout.structs:
                # 2.7 has no asyncio; a layout that declares no task object cannot read tasks
                raise SnapshotError("asyncio tasks cannot be read on Python %d.%d (its layout declares no "
                                    "asyncio Task object); dump without --async"
                                    % tuple(self.layout.version[:2]))
            from .tasks.reader import TaskReader
            self._task_reader = TaskReader(self.process, self.layout, self.walker, self.objects,
                                           self.frame_builder, self.interpreter)
        return self._task_reader

    def _read_tasks(self, copied, with_locals: bool, max_repr: int, max_depth: int) -> tuple:
        """asyncio tasks of every interpreter (read inside the same pause as the threads)."""
        return self._task_reader_for().read([(c[0], c[1], c[3]) for c in copied], [c[4] for c in copied],
                                      with_locals, max_repr, max_depth)


class _nothing_paused:
    """The ``--nonblocking`` stand-in for ``Process.paused()``."""

    def __enter__(self) -> List[int]:
        return []

    def __exit__(self, *exc) -> None:
        return None


_NOTHING_PAUSED = _nothing_paused()  # it keeps no state: one serves every sample
