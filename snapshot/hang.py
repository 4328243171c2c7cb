"""Hang diagnosis: capture a whole process tree, and tell stuck and waiting threads apart.

Used by ``pyspy-repl watch`` and the ``--hang-timeout`` pytest plugin; the
front ends decide when to call it, render the report (``repl/hangreport.py``)
and end the tree (``repl/supervise.py``).  This module only reads: it never
prints, exits, signals or kills a process.

* ``process_tree(root)``: the root and every descendant (grandchildren
  included), found through psutil.
* ``capture_tree(root, ...)``: attach to every process of the tree (each gets
  its own ``Target``, so processes of different Python versions work), take
  ``samples`` stack samples per process over ``window`` seconds with the one
  sampling loop (``sampler.Sampler``: each sample pauses the process for one
  consistent read and always resumes it), then classify every thread:

  - **stuck**: its stack (function, file, line of every frame) was identical
    in every sample of the window;
  - **waiting**: it waits on something, named with the API and the frame it
    waits in.  Three sources, in this order (the tables are in ``waits``):

    1. *library frames*: the innermost frames are a known blocking function
       of the standard library (``Condition.wait``, ``Event.wait``,
       ``Thread.join``, ``queue.Queue.get``, ``multiprocessing`` queues and
       connections, ``selectors``, ``subprocess`` waits, ...), matched by
       function name and file name;
    2. *source line*: a C call such as ``lock.acquire()``, ``time.sleep()`` or
       ``SimpleQueue.get()`` has no Python frame, so the innermost Python frame
       is the caller.  When that frame's source file is readable here
       (``linecache``), its current line is matched against ``.acquire(``,
       ``with <...lock...>:``, ``.join(``, ``.wait(``, ``.get(``, ``sleep(``,
       ``select(``/``poll(``, ``.recv(`` ...  This is only trusted for a
       thread that did not move or that the kernel reports blocked, since
       ``d.get(`` in a busy loop is no wait;
    3. *kernel*: the thread's current system call (read by ``snapshot.process``) names the system call a
       blocked thread sleeps in (futex, poll, select, nanosleep, read, wait4);
       used to confirm 2. and as a last resort (x86-64 and aarch64 tables).

* ``native=True`` (``watch --native``): every sample pauses the process and
  unwinds each thread's C stack too (``snapshot.native``), merged with its
  Python frames, so a thread stuck in a C call shows where in C it waits
  (``pthread_mutex_lock``, ``nanosleep``...).  Stuck still means "the whole
  merged stack was identical": a C loop that moves its pc is not stuck.

* ``HangReport.to_dict()``: the JSON form (threads in py-spy's field names
  plus ``hang``).  Stall detection is ``stall.StallMonitor``.

Non-Python processes of the tree are listed, not dumped.
"""
from __future__ import annotations

import linecache
import os
import platform
import time
from layouts.records import dataclass, field

from .errors import NotPythonError, ProcessExitedError, SnapshotError
from .model import Frame, Snapshot, ThreadStack
from .waits import KERNEL_LABELS, library_wait, source_waits, syscall_wait

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple


REPORT_VERSION = 1


# ---------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelState:
    """What the kernel says a thread does: its state letter and, when blocked, its system call."""
    state: Optional[str]          # R, S, D, T, t, Z...
    syscall: Optional[str]        # "futex", "poll"... when blocked in a known call
    kind: Optional[str]           # lock / sleep / select / recv / join
    wchan: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"state": self.state, "syscall": self.syscall, "wchan": self.wchan}


def kernel_state(pid: int, tid: Optional[int]) -> Optional[KernelState]:
    """The kernel's view of one thread (state, system call, wait channel); None when gone."""
    if not tid:
        return None
    from .process.procfs import kernel_task
    found = kernel_task(pid, tid)
    if found is None:
        return None
    state, number, wchan = found
    syscall = kind = None
    if number is not None:
        entry = syscall_wait(platform.machine(), number)
        if entry:
            syscall, kind = entry
        else:
            syscall = "syscall %d" % number
    return KernelState(state, syscall, kind, wchan)


@dataclass(frozen=True)
class WaitInfo:
    """What a thread waits on, and where."""
    kind: str                  # lock | condition | barrier | join | queue | recv | select | sleep | timed
    api: str                   # "Event.wait", "lock.acquire()", "futex wait ..."
    frame: Optional[Frame]     # the innermost Python frame: where it waits
    caller: Optional[Frame]    # the first frame outside the waiting library code (user code)
    source: Optional[str]      # the source line of the frame that made the call, when readable
    how: str                   # library-frame | source-line | kernel

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "api": self.api, "how": self.how, "source": self.source,
                "frame": None if self.frame is None else _frame_ref(self.frame),
                "caller": None if self.caller is None else _frame_ref(self.caller)}


def _frame_ref(frame: Frame) -> Dict[str, Any]:
    return {"name": frame.function, "filename": frame.filename, "short_filename": frame.short_filename,
            "line": frame.line}


def _library_match(frame: Frame) -> Optional[Tuple[str, str]]:
    if frame.is_native:
        return None
    return library_wait(frame.function, frame.filename)


def source_line(frame: Frame) -> Optional[str]:
    """The frame's current source line, when its file is readable from here."""
    if not frame.filename or frame.filename.startswith("<") or frame.line <= 0:
        return None
    try:
        text = linecache.getline(frame.filename, frame.line)
    except Exception:  # noqa: BLE001 - an unreadable file is just "unknown"
        return None
    return text.strip() or None


def classify_wait(frames: Sequence[Frame], moved: bool,
                  kernel: Optional[KernelState] = None) -> Optional[WaitInfo]:
    """Name what a thread (innermost frame first) waits on, or None."""
    python = [f for f in frames if not f.is_native]
    if not python:
        return None
    innermost = python[0]
    blocked = kernel is not None and kernel.state in ("S", "D") and kernel.kind is not None
    # 1. library frames: innermost run of known blocking stdlib functions.
    match = None
    index = 0
    while index < len(python):
        found = _library_match(python[index])
        if found is None:
            break
        match = found
        index += 1
    if match is not None:
        caller = python[index] if index < len(python) else None
        source = source_line(caller) if caller is not None else None
        return WaitInfo(match[0], match[1], innermost, caller, source, "library-frame")
    # 2. source line of the innermost frame (a C call has no frame of its own).
    source = source_line(innermost)
    if source is not None and (not moved or blocked):
        for pattern, kind, label in source_waits():
            if pattern.search(source):
                if kind == "lock?":
                    if not (blocked and kernel.kind == "lock"):
                        continue
                    kind = "lock"
                if kind == "lock" and label.startswith("with"):
                    label = "with-statement lock acquire"
                return WaitInfo(kind, label, innermost, innermost, source, "source-line")
    # 3. the kernel: blocked in a known system call, and the stack did not move.
    if blocked and not moved:
        return WaitInfo(kernel.kind, "%s [%s]" % (KERNEL_LABELS.get(kernel.kind, kernel.kind), kernel.syscall),
                        innermost, innermost, source, "kernel")
    return None


# ---------------------------------------------------------------------------
# The process tree and the report
# ---------------------------------------------------------------------------
def _psutil():
    import psutil  # a dependency of the project; imported lazily like everything heavy
    return psutil


def process_tree(root_pid: int, exclude: Iterable[int] = ()) -> List[Any]:
    """psutil.Process objects of ``root_pid`` and all its descendants (parents first)."""
    psutil = _psutil()
    skip = set(exclude)
    try:
        root = psutil.Process(root_pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in procs if p.pid not in skip]


@dataclass
class ProcessInfo:
    pid: int
    ppid: Optional[int]
    command_line: Tuple[str, ...]
    name: str
    elapsed: Optional[float]      # seconds since the process started
    create_time: Optional[float] = None

    @classmethod
    def of(cls, proc) -> "ProcessInfo":
        psutil = _psutil()
        try:
            with proc.oneshot():
                ppid = proc.ppid()
                name = proc.name()
                created = proc.create_time()
                try:
                    cmdline = tuple(proc.cmdline())
                except psutil.Error:
                    cmdline = ()
        except psutil.Error:
            return cls(proc.pid, None, (), "?", None)
        return cls(proc.pid, ppid, cmdline, name, max(0.0, time.time() - created), created)

    def to_dict(self) -> Dict[str, Any]:
        return {"pid": self.pid, "ppid": self.ppid, "command_line": list(self.command_line), "name": self.name,
                "elapsed": None if self.elapsed is None else round(self.elapsed, 3)}


@dataclass
class ThreadVerdict:
    thread: ThreadStack
    samples: int                  # in how many samples the thread was seen
    moved: bool                   # its stack changed between samples
    waiting: Optional[WaitInfo]
    kernel: Optional[KernelState] = None

    @property
    def stuck(self) -> bool:
        return self.samples >= 2 and not self.moved

    def to_dict(self, pid: int) -> Dict[str, Any]:
        data = self.thread.to_dict(pid)
        data["hang"] = {"stuck": self.stuck, "moved": self.moved, "samples": self.samples,
                        "waiting": None if self.waiting is None else self.waiting.to_dict(),
                        "kernel": None if self.kernel is None else self.kernel.to_dict()}
        return data


@dataclass
class ProcessReport:
    info: ProcessInfo
    python: bool = False
    snapshot: Optional[Snapshot] = None
    threads: List[ThreadVerdict] = field(default_factory=list)
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        data = self.info.to_dict()
        data.update({"python": self.python, "error": self.error,
                     "python_version": self.snapshot.python_version if self.snapshot else None,
                     "executable": self.snapshot.executable if self.snapshot else None,
                     "threads": [t.to_dict(self.info.pid) for t in self.threads]})
        return data


@dataclass
class HangReport:
    reason: str                    # timeout | stall | pytest | manual
    root_pid: int
    command: Tuple[str, ...] = ()
    elapsed: Optional[float] = None
    limit: Optional[float] = None  # the timeout or stall limit that fired
    samples: int = 0
    window: float = 0.0
    processes: List[ProcessReport] = field(default_factory=list)
    title: Optional[str] = None    # e.g. the pytest node id
    captured_at: float = field(default_factory=time.time)
    native: bool = False           # threads carry merged native (C) frames

    # -- queries ---------------------------------------------------------------
    def python_processes(self) -> List[ProcessReport]:
        return [p for p in self.processes if p.python]

    def flagged(self) -> List[Tuple[ProcessReport, ThreadVerdict]]:
        return [(p, t) for p in self.processes for t in p.threads if t.stuck or t.waiting is not None]

    # -- output ------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {
            "version": REPORT_VERSION, "reason": self.reason, "title": self.title, "root_pid": self.root_pid,
            "command": list(self.command), "elapsed": None if self.elapsed is None else round(self.elapsed, 3),
            "limit": self.limit, "samples": self.samples, "window": self.window, "captured_at": self.captured_at,
            "native": self.native,
            "processes": [p.to_dict() for p in self.processes],
            "flagged": [{"pid": p.info.pid, "thread_id": t.thread.thread_id, "os_thread_id": t.thread.native_id,
                         "thread_name": t.thread.name, "stuck": t.stuck,
                         "waiting": None if t.waiting is None else t.waiting.to_dict()}
                        for p, t in self.flagged()],
        }


# ---------------------------------------------------------------------------
# Capture
# ---------------------------------------------------------------------------
def stack_key(thread: ThreadStack) -> Tuple[Tuple[str, str, int], ...]:
    """What "the stack did not move" compares: function, file and line of every frame."""
    return tuple((f.function, f.filename, f.line) for f in thread.frames)


def _attach(pid: int):
    from .target import attach
    return attach(pid)


def capture_tree(root_pid: int, samples: int = 5, window: float = 1.0, locals: bool = False,
                 reason: str = "manual", exclude: Iterable[int] = (), command: Sequence[str] = (),
                 elapsed: Optional[float] = None, limit: Optional[float] = None, title: Optional[str] = None,
                 max_repr: int = 256, targets: Optional[Dict[int, Any]] = None, native: bool = False,
                 native_all: bool = False) -> HangReport:
    """Capture every process of the tree of ``root_pid`` (see the module docstring).

    ``native``/``native_all``: C frames merged into every thread (each sample
    pauses the process; a process whose native frames cannot be read is
    captured with its Python frames and the reason as its ``error``).

    ``targets`` may hold already attached ``Target`` objects by pid (from a
    ``StallMonitor``); they are reused, not closed.  Errors of one process never
    stop the capture of the others: they are recorded on its ``ProcessReport``.
    """
    samples = max(1, samples)
    native = native or native_all
    report = HangReport(reason, root_pid, tuple(command), elapsed, limit, samples, window, title=title,
                        native=native)
    procs = process_tree(root_pid, exclude)
    owned: Dict[int, Any] = {}
    attached: List[Tuple[ProcessReport, Any]] = []
    try:
        for proc in procs:
            entry = ProcessReport(ProcessInfo.of(proc))
            report.processes.append(entry)
            target = (targets or {}).get(proc.pid)
            if target is None:
                try:
                    target = _attach(proc.pid)
                except NotPythonError as e:
                    entry.error = str(e)
                    continue
                except SnapshotError as e:
                    entry.python = _looks_python(entry.info)
                    entry.error = "%s (%s)" % (e, type(e).__name__)
                    continue
                except Exception as e:  # noqa: BLE001 - one broken process must not hide the others
                    entry.python = _looks_python(entry.info)
                    entry.error = "%s: %s" % (type(e).__name__, e)
                    continue
                owned[proc.pid] = target
            entry.python = True
            attached.append((entry, target))
        plain: List[Tuple[ProcessReport, Any]] = []
        with_native: List[Tuple[ProcessReport, Any]] = []
        for entry, target in attached:
            if native:
                try:
                    target.check_native(blocking=True)
                except SnapshotError as e:
                    entry.error = "native frames not read: %s" % e
                    plain.append((entry, target))
                    continue
                with_native.append((entry, target))
            else:
                plain.append((entry, target))
        history = _sample_all(plain, samples, window)
        if with_native:
            history.update(_sample_all(with_native, samples, window, native=True, native_all=native_all))
        for entry, target in attached:
            snaps = history[entry.info.pid]
            final = None
            if locals:
                try:
                    use_native = any(entry is e for e, _ in with_native)
                    final = target.snapshot(locals=True, blocking=True, max_repr=max_repr, native=use_native,
                                            native_all=native_all and use_native)
                except Exception as e:  # noqa: BLE001
                    entry.error = "locals snapshot failed: %s" % e
            if final is None and snaps:
                final = snaps[-1]
            entry.snapshot = final
            if final is None:
                entry.error = entry.error or "no sample could be read"
                continue
            entry.threads = _verdicts(entry.info.pid, final, snaps)
        return report
    finally:
        for target in owned.values():
            try:
                target.close()
            except Exception:  # noqa: BLE001
                pass


def _sample_all(attached: List[Tuple[ProcessReport, Any]], samples: int, window: float,
                native: bool = False, native_all: bool = False) -> Dict[int, List[Snapshot]]:
    """``samples`` passes over every attached process, spread evenly over ``window`` seconds."""
    from .sampler import Sampler, SamplerOptions
    history: Dict[int, List[Snapshot]] = {entry.info.pid: [] for entry, _ in attached}
    if not attached:
        return history
    entries = {entry.info.pid: entry for entry, _ in attached}
    # n samples over the window: n - 1 periods; no window means back to back
    rate = (samples - 1) / window if samples > 1 and window > 0 else 1e6

    def failed(pid: int, error: BaseException) -> None:
        if isinstance(error, ProcessExitedError):
            entries[pid].error = str(error)
        else:
            entries[pid].error = "sample %d failed: %s" % (sampler.stats.passes, error)

    sampler = Sampler([target for _, target in attached], None,
                      SamplerOptions(rate=rate, passes=samples, idle=True, native=native,
                                     native_all=native_all),
                      on_snapshot=lambda snapshot: history[snapshot.pid].append(snapshot), on_error=failed)
    try:
        sampler.run()
    except Exception as e:  # noqa: BLE001 - a report with what was read beats no report
        for entry in entries.values():
            entry.error = entry.error or "sampling failed: %s: %s" % (type(e).__name__, e)
    finally:
        sampler.close()
    return history


def _looks_python(info: ProcessInfo) -> bool:
    return "python" in (info.name or "").lower() or any("python" in os.path.basename(a).lower()
                                                      for a in info.command_line[:1])


def _verdicts(pid: int, final: Snapshot, snaps: List[Snapshot]) -> List[ThreadVerdict]:
    verdicts = []
    for thread in final.threads:
        keys = [stack_key(t) for s in snaps for t in s.threads if t.thread_id == thread.thread_id]
        moved = len(set(keys)) > 1
        kernel = kernel_state(pid, thread.native_id)
        for _ in range(20):
            # just after a pause the thread restarts its interrupted system call: let it settle
            if kernel is None or kernel.state not in ("R", "t", "T"):
                break
            time.sleep(0.005)
            kernel = kernel_state(pid, thread.native_id)
        plain = tuple(f.without_locals() for f in thread.frames)
        waiting = classify_wait(plain, moved, kernel)
        if waiting is not None and waiting.frame is not None:
            # point at the frame objects of the displayed thread (they may carry locals)
            waiting = _rebind(waiting, thread.frames, plain)
        verdicts.append(ThreadVerdict(thread, len(keys), moved, waiting, kernel))
    return verdicts


def _rebind(waiting: WaitInfo, frames: Sequence[Frame], plain: Sequence[Frame]) -> WaitInfo:
    def find(frame):
        for original, bare in zip(frames, plain):
            if bare is frame:
                return original
        return frame
    return WaitInfo(waiting.kind, waiting.api, find(waiting.frame),
                    None if waiting.caller is None else find(waiting.caller), waiting.source, waiting.how)
