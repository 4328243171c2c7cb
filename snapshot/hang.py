"""Hang diagnosis: capture a whole process tree, and tell stuck and waiting threads apart.

Used by ``pyspy-repl watch`` and the ``--hang-timeout`` pytest plugin; front
ends only choose when to call it and where the report goes.

* ``process_tree(root)``: the root and every descendant (grandchildren
  included), found through psutil.
* ``capture_tree(root, ...)``: attach to every process of the tree (each gets
  its own ``Target``, so processes of different Python versions work), take
  ``samples`` stack samples per process over ``window`` seconds (each sample
  pauses the process for one consistent read and always resumes it), then
  classify every thread:

  - **stuck**: its stack (function, file, line of every frame) was identical
    in every sample of the window;
  - **waiting**: it waits on something, named with the API and the frame it
    waits in.  Three sources, in this order:

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

* ``StallMonitor``: cheap nonblocking samples of the tree, to notice that no
  Python stack changed for some time.
* ``HangReport.render(out)`` / ``HangReport.to_dict()``: the text report for a
  CI log and its JSON form (threads in py-spy's field names plus ``hang``).

Non-Python processes of the tree are listed, not dumped.  This module never
imports ``repl``.
"""
from __future__ import annotations

import linecache
import os
import platform
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

from .errors import NotPythonError, ProcessExitedError, SnapshotError
from .model import Frame, Snapshot, ThreadStack, short_filename

REPORT_VERSION = 1

# ---------------------------------------------------------------------------
# What a waiting thread looks like
# ---------------------------------------------------------------------------

#: (file suffix, function name, kind, API label).  Matched innermost-first; the
#: outermost consecutive library match gives the API (Event.wait over Condition.wait).
LIBRARY_WAITS: Tuple[Tuple[str, str, str, str], ...] = (
    ("threading.py", "wait", "condition", "Condition.wait"),
    ("threading.py", "wait_for", "condition", "Condition.wait_for"),
    ("threading.py", "_wait", "barrier", "Barrier.wait"),
    ("threading.py", "acquire", "lock", "Semaphore.acquire"),
    ("threading.py", "_acquire_restore", "lock", "RLock.acquire"),
    ("threading.py", "_wait_for_tstate_lock", "join", "Thread.join"),
    ("threading.py", "join", "join", "Thread.join"),
    ("queue.py", "get", "queue", "queue.Queue.get"),
    ("queue.py", "put", "queue", "queue.Queue.put"),
    ("queue.py", "join", "queue", "queue.Queue.join"),
    ("multiprocessing/queues.py", "get", "queue", "multiprocessing.Queue.get"),
    ("multiprocessing/queues.py", "put", "queue", "multiprocessing.Queue.put"),
    ("multiprocessing/queues.py", "join", "queue", "multiprocessing.JoinableQueue.join"),
    ("multiprocessing/connection.py", "recv", "recv", "Connection.recv"),
    ("multiprocessing/connection.py", "recv_bytes", "recv", "Connection.recv_bytes"),
    ("multiprocessing/connection.py", "_recv_bytes", "recv", "Connection.recv_bytes"),
    ("multiprocessing/connection.py", "_recv", "recv", "Connection.recv"),
    ("multiprocessing/connection.py", "poll", "select", "Connection.poll"),
    ("multiprocessing/connection.py", "_poll", "select", "Connection.poll"),
    ("multiprocessing/connection.py", "wait", "select", "multiprocessing.connection.wait"),
    ("multiprocessing/connection.py", "accept", "recv", "Listener.accept"),
    ("multiprocessing/process.py", "join", "join", "Process.join"),
    ("multiprocessing/popen_fork.py", "wait", "join", "Process.join"),
    ("multiprocessing/popen_fork.py", "poll", "join", "Process.join"),
    ("multiprocessing/popen_forkserver.py", "wait", "join", "Process.join"),
    ("multiprocessing/popen_forkserver.py", "poll", "join", "Process.join"),
    ("multiprocessing/popen_spawn_posix.py", "wait", "join", "Process.join"),
    ("multiprocessing/popen_spawn_posix.py", "poll", "join", "Process.join"),
    ("multiprocessing/pool.py", "get", "condition", "AsyncResult.get"),
    ("multiprocessing/pool.py", "wait", "condition", "AsyncResult.wait"),
    ("multiprocessing/pool.py", "join", "join", "Pool.join"),
    ("multiprocessing/synchronize.py", "acquire", "lock", "multiprocessing.Lock.acquire"),
    ("multiprocessing/synchronize.py", "__enter__", "lock", "multiprocessing.Lock.acquire"),
    ("multiprocessing/synchronize.py", "wait", "condition", "multiprocessing.Condition.wait"),
    ("multiprocessing/managers.py", "_callmethod", "recv", "manager call"),
    ("selectors.py", "select", "select", "selectors.select"),
    ("subprocess.py", "wait", "join", "Popen.wait"),
    ("subprocess.py", "_wait", "join", "Popen.wait"),
    ("subprocess.py", "_try_wait", "join", "Popen.wait"),
    ("subprocess.py", "communicate", "join", "Popen.communicate"),
    ("subprocess.py", "_communicate", "join", "Popen.communicate"),
    ("socket.py", "accept", "recv", "socket.accept"),
    ("socket.py", "readinto", "recv", "socket read"),
    ("concurrent/futures/_base.py", "result", "condition", "Future.result"),
    ("concurrent/futures/_base.py", "wait", "condition", "concurrent.futures.wait"),
    ("concurrent/futures/_base.py", "as_completed", "condition", "concurrent.futures.as_completed"),
    ("concurrent/futures/_base.py", "__get_result", "condition", "Future.result"),
)

#: Source-line patterns for C calls without a Python frame: (regex, kind, label).
SOURCE_WAITS: Tuple[Tuple["re.Pattern[str]", str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE if flags else 0), kind, label) for pattern, flags, kind, label in (
        (r"\.acquire\s*\(", 0, "lock", "lock.acquire()"),
        (r"^\s*(async\s+)?with\b.*(lock|mutex|sem|cond|guard)", 1, "lock", "with <lock>: (acquire)"),
        # any other ``with X:`` line: a lock only if the kernel says the thread sleeps in a futex
        (r"^\s*with\b", 0, "lock?", "with <lock>: (acquire)"),
        (r"\.join\s*\(", 0, "join", "join()"),
        (r"\bsleep\s*\(", 0, "sleep", "sleep()"),
        (r"\.wait\s*\(|\bwait\s*\(", 0, "condition", "wait()"),
        (r"\.get\s*\(", 0, "queue", "get()"),
        (r"\.put\s*\(", 0, "queue", "put()"),
        (r"\b(select|poll|epoll|kqueue)\b[\w.]*\s*\(", 0, "select", "select/poll"),
        (r"\.(recv\w*|accept|read\w*|readline)\s*\(|\binput\s*\(", 0, "recv", "read/recv"),
        (r"waitpid|\.communicate\s*\(", 0, "join", "waitpid"),
    ))

#: Blocking system calls by number: {machine: {nr: (name, kind)}}.
_SYSCALLS = {
    "x86_64": {0: ("read", "recv"), 7: ("poll", "select"), 23: ("select", "select"),
               35: ("nanosleep", "sleep"), 45: ("recvfrom", "recv"), 47: ("recvmsg", "recv"),
               43: ("accept", "recv"), 61: ("wait4", "join"), 202: ("futex", "lock"),
               230: ("clock_nanosleep", "sleep"), 232: ("epoll_wait", "select"), 247: ("waitid", "join"),
               270: ("pselect6", "select"), 271: ("ppoll", "select"), 281: ("epoll_pwait", "select"),
               288: ("accept4", "recv"), 441: ("epoll_pwait2", "select"), 34: ("pause", "sleep")},
    "aarch64": {63: ("read", "recv"), 73: ("ppoll", "select"), 72: ("pselect6", "select"),
                101: ("nanosleep", "sleep"), 115: ("clock_nanosleep", "sleep"), 207: ("recvfrom", "recv"),
                212: ("recvmsg", "recv"), 202: ("accept", "recv"), 242: ("accept4", "recv"),
                260: ("wait4", "join"), 95: ("waitid", "join"), 98: ("futex", "lock"),
                22: ("epoll_pwait", "select"), 441: ("epoll_pwait2", "select")},
}
_KERNEL_LABELS = {"lock": "futex wait (a lock, condition or event)", "sleep": "sleep", "select": "select/poll",
                  "recv": "read/recv", "join": "waitpid (a child process)"}


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
        entry = _SYSCALLS.get(platform.machine(), {}).get(number)
        if entry:
            syscall, kind = entry
        else:
            syscall = "syscall %d" % number
    return KernelState(state, syscall, kind, wchan)


@dataclass(frozen=True)
class WaitInfo:
    """What a thread waits on, and where."""
    kind: str                  # lock | condition | barrier | join | queue | recv | select | sleep
    api: str                   # "Event.wait", "lock.acquire()", "futex wait ..."
    frame: Optional[Frame]     # the innermost Python frame: where it waits
    caller: Optional[Frame]    # the first frame outside the waiting library code (user code)
    source: Optional[str]      # the source line of the frame that made the call, when readable
    how: str                   # library-frame | source-line | kernel

    def describe(self) -> str:
        where = self.caller or self.frame
        text = "waiting in %s" % self.api
        if where is not None:
            text += " at %s" % frame_text(where)
        if self.frame is not None and where is not self.frame:
            text += " (blocked in %s)" % frame_text(self.frame)
        return text

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "api": self.api, "how": self.how, "source": self.source,
                "frame": None if self.frame is None else _frame_ref(self.frame),
                "caller": None if self.caller is None else _frame_ref(self.caller)}


def frame_text(frame: Frame) -> str:
    return "%s (%s:%d)" % (frame.function, frame.short_filename, frame.line)


def _frame_ref(frame: Frame) -> Dict[str, Any]:
    return {"name": frame.function, "filename": frame.filename, "short_filename": frame.short_filename,
            "line": frame.line}


def _library_match(frame: Frame) -> Optional[Tuple[str, str]]:
    if frame.is_native:
        return None
    name = frame.function.rsplit(".", 1)[-1]
    filename = frame.filename.replace(os.sep, "/")
    for suffix, function, kind, label in LIBRARY_WAITS:
        if name == function and filename.endswith("/" + suffix):
            # threading's qualified names say more (Event.wait vs Condition.wait, BoundedSemaphore);
            # elsewhere the table's label is clearer (BaseProcess.join -> Process.join).
            qualified = (frame.function if suffix == "threading.py" and "." in frame.function
                         and not frame.function.startswith("<") else None)
            return kind, (qualified or label)
    return None


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
        for pattern, kind, label in SOURCE_WAITS:
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
        return WaitInfo(kernel.kind, "%s [%s]" % (_KERNEL_LABELS.get(kernel.kind, kernel.kind), kernel.syscall),
                        innermost, innermost, source, "kernel")
    return None


# ---------------------------------------------------------------------------
# The process tree
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

    def label(self, window: float) -> str:
        parts = []
        if self.stuck:
            parts.append("STUCK: did not move in %d samples over %.1f s" % (self.samples, window))
        elif self.samples >= 2:
            parts.append("running: stack changed between samples")
        if self.waiting is not None:
            parts.append(self.waiting.describe())
        elif self.kernel is not None and self.kernel.syscall and self.kernel.state in ("S", "D"):
            parts.append("kernel: blocked in %s" % self.kernel.syscall)
        return "; ".join(parts)

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

    # -- queries ---------------------------------------------------------------
    def python_processes(self) -> List[ProcessReport]:
        return [p for p in self.processes if p.python]

    def flagged(self) -> List[Tuple[ProcessReport, ThreadVerdict]]:
        return [(p, t) for p in self.processes for t in p.threads if t.stuck or t.waiting is not None]

    # -- output ------------------------------------------------------------------
    def headline(self) -> str:
        what = {"timeout": "TIMEOUT", "stall": "STALL", "pytest": "TEST TIMEOUT"}.get(self.reason, self.reason.upper())
        text = "pyspy-repl: %s" % what
        if self.reason == "stall" and self.limit is not None:
            text += ": no Python stack in the process tree changed for %.1f s" % self.limit
        elif self.limit is not None:
            text += " after %.1f s" % self.limit
        if self.title:
            text += " -- %s" % self.title
        return text

    def render(self, out: TextIO, show_locals: bool = False) -> None:
        rule = "=" * 78
        pythons = self.python_processes()
        out.write(rule + "\n" + self.headline() + "\n")
        if self.command:
            out.write("command: %s\n" % " ".join(self.command))
        out.write("process tree of pid %d: %d process(es), %d Python; %d samples over %.1f s per process\n"
                  % (self.root_pid, len(self.processes), len(pythons), self.samples, self.window))
        out.write(rule + "\n")
        for proc in self.processes:
            out.write("\n")
            self._render_process(proc, out, show_locals)
        out.write("\n" + rule + "\nSummary (stuck = stack identical in all %d samples):\n" % self.samples)
        flagged = self.flagged()
        if not flagged:
            out.write("  no stuck or waiting thread found\n")
        for proc, verdict in flagged:
            thread = verdict.thread
            top = verdict.waiting.caller or verdict.waiting.frame if verdict.waiting else (
                thread.frames[0] if thread.frames else None)
            out.write("  pid %d %s %-8s %s\n" % (
                proc.info.pid, _thread_ident(thread), "STUCK" if verdict.stuck else "moving",
                (verdict.waiting.describe() if verdict.waiting else
                 ("in %s" % frame_text(top) if top else "no Python frames"))))
            if verdict.waiting is not None and verdict.waiting.source:
                out.write("      > %s\n" % verdict.waiting.source)
        out.write(rule + "\n")

    def _render_process(self, proc: ProcessReport, out: TextIO, show_locals: bool) -> None:
        info = proc.info
        elapsed = "?" if info.elapsed is None else "%.1f s" % info.elapsed
        out.write("Process %d (parent %s, running %s): %s\n" % (
            info.pid, info.ppid if info.ppid is not None else "?", elapsed,
            " ".join(info.command_line) or info.name))
        if not proc.python:
            out.write("    not a Python process (not dumped)%s\n" % (
                "" if not proc.error or "not a Python" in proc.error else ": " + proc.error))
            return
        if proc.snapshot is None:
            out.write("    could not read it: %s\n" % proc.error)
            return
        snap = proc.snapshot
        out.write("Python v%s (%s)\n" % (snap.python_version, snap.executable))
        if proc.error:
            out.write("    note: %s\n" % proc.error)
        for verdict in proc.threads:
            thread = verdict.thread
            state = "idle" if thread.is_idle else "active"
            if thread.holds_gil:
                state += "+gil"
            out.write("\nThread %s (%s): \"%s\"\n" % (_thread_ident(thread, bare=True), state, thread.name or ""))
            label = verdict.label(self.window)
            if label:
                out.write("  ** %s\n" % label)
            waiting_at = verdict.waiting.frame if verdict.waiting else None
            for frame in thread.frames:
                mark = "  > " if frame is waiting_at or (waiting_at is not None and frame == waiting_at) else "    "
                out.write("%s%s\n" % (mark, frame_text(frame)))
                if show_locals and frame.locals:
                    for local in frame.locals:
                        out.write("        %s%s = %s\n" % ("(arg) " if local.is_argument else "", local.name,
                                                            local.repr))
            if not thread.frames:
                out.write("    (no Python frames)\n")

    def text(self, show_locals: bool = False) -> str:
        import io
        buf = io.StringIO()
        self.render(buf, show_locals)
        return buf.getvalue()

    def to_dict(self) -> Dict[str, Any]:
        return {
            "version": REPORT_VERSION, "reason": self.reason, "title": self.title, "root_pid": self.root_pid,
            "command": list(self.command), "elapsed": None if self.elapsed is None else round(self.elapsed, 3),
            "limit": self.limit, "samples": self.samples, "window": self.window, "captured_at": self.captured_at,
            "processes": [p.to_dict() for p in self.processes],
            "flagged": [{"pid": p.info.pid, "thread_id": t.thread.thread_id, "os_thread_id": t.thread.native_id,
                         "thread_name": t.thread.name, "stuck": t.stuck,
                         "waiting": None if t.waiting is None else t.waiting.to_dict()}
                        for p, t in self.flagged()],
        }


def _thread_ident(thread: ThreadStack, bare: bool = False) -> str:
    ident = str(thread.native_id) if thread.native_id else "%#x" % thread.thread_id
    return ident if bare else "thread %s %r" % (ident, thread.name or "")


# ---------------------------------------------------------------------------
# Capture
# ---------------------------------------------------------------------------
def _stack_key(thread: ThreadStack) -> Tuple[Tuple[str, str, int], ...]:
    return tuple((f.function, f.filename, f.line) for f in thread.frames)


def _attach(pid: int):
    from .target import attach
    return attach(pid)


def capture_tree(root_pid: int, samples: int = 5, window: float = 1.0, locals: bool = False,
                 reason: str = "manual", exclude: Iterable[int] = (), command: Sequence[str] = (),
                 elapsed: Optional[float] = None, limit: Optional[float] = None, title: Optional[str] = None,
                 max_repr: int = 256, targets: Optional[Dict[int, Any]] = None) -> HangReport:
    """Capture every process of the tree of ``root_pid`` (see the module docstring).

    ``targets`` may hold already attached ``Target`` objects by pid (from a
    ``StallMonitor``); they are reused, not closed.  Errors of one process never
    stop the capture of the others: they are recorded on its ``ProcessReport``.
    """
    samples = max(1, samples)
    report = HangReport(reason, root_pid, tuple(command), elapsed, limit, samples, window, title=title)
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
        history: Dict[int, List[Snapshot]] = {entry.info.pid: [] for entry, _ in attached}
        interval = window / (samples - 1) if samples > 1 else 0.0
        start = time.monotonic()
        for index in range(samples):
            for entry, target in attached:
                if entry.error and not history[entry.info.pid] and index > 0 and "exited" in entry.error:
                    continue
                try:
                    history[entry.info.pid].append(target.sample(blocking=True))
                except ProcessExitedError as e:
                    entry.error = str(e)
                except Exception as e:  # noqa: BLE001
                    entry.error = "sample %d failed: %s" % (index + 1, e)
            if index + 1 < samples:
                delay = start + interval * (index + 1) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        for entry, target in attached:
            snaps = history[entry.info.pid]
            final = None
            if locals:
                try:
                    final = target.snapshot(locals=True, blocking=True, max_repr=max_repr)
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


def _looks_python(info: ProcessInfo) -> bool:
    return "python" in (info.name or "").lower() or any("python" in os.path.basename(a).lower()
                                                      for a in info.command_line[:1])


def _verdicts(pid: int, final: Snapshot, snaps: List[Snapshot]) -> List[ThreadVerdict]:
    verdicts = []
    for thread in final.threads:
        keys = [_stack_key(t) for s in snaps for t in s.threads if t.thread_id == thread.thread_id]
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


# ---------------------------------------------------------------------------
# Stall detection
# ---------------------------------------------------------------------------
class StallMonitor:
    """Nonblocking samples of a tree: how long has no Python stack changed?

    ``poll()`` samples every Python process of the tree once (without pausing
    it) and returns the seconds since the last change.  A change is: a process
    appearing or exiting, a thread appearing or exiting, any frame of any
    thread changing, or a read failing (a busy process is more likely to give
    an inconsistent nonblocking read; never mistake that for a stall), or the
    tree having used at least ``busy_share`` of one CPU since the previous poll
    (a tight loop can keep the very same stack while it works; a livelock is
    still caught by the overall timeout).  With no Python process in the tree
    there is no stall.
    """

    #: seconds before retrying to attach a process that was not ready
    RETRY = 0.5

    def __init__(self, root_pid: int, exclude: Iterable[int] = (), busy_share: float = 0.05):
        self.root_pid = root_pid
        self.busy_share = busy_share
        self._cpu: Dict[int, float] = {}
        self._polled_at: Optional[float] = None
        self.exclude = set(exclude)
        self.targets: Dict[int, Any] = {}
        self._identity: Dict[int, Tuple[Optional[float], str]] = {}
        self._not_python: Dict[int, Tuple[Optional[float], str]] = {}
        self._retry_at: Dict[int, float] = {}
        self._signature: Optional[Any] = None
        self._changed_at = time.monotonic()
        self.seen: Dict[int, Optional[float]] = {}   # every pid ever in the tree -> create_time

    def unchanged_for(self) -> float:
        return time.monotonic() - self._changed_at

    def poll(self) -> float:
        now = time.monotonic()
        parts = []
        python_seen = False
        live = set()
        cpu_used = 0.0
        for proc in process_tree(self.root_pid, self.exclude):
            pid = proc.pid
            live.add(pid)
            try:
                ident = (proc.create_time(), _exe(pid))
                times = proc.cpu_times()
                cpu = times.user + times.system
            except Exception:  # noqa: BLE001
                continue
            cpu_used += max(0.0, cpu - self._cpu.get(pid, cpu))
            self._cpu[pid] = cpu
            self.seen.setdefault(pid, ident[0])
            if self._identity.get(pid) != ident:
                self._drop(pid)
                self._identity[pid] = ident
            if self._not_python.get(pid) == ident:
                parts.append((pid, "-"))
                continue
            target = self.targets.get(pid)
            if target is None and now >= self._retry_at.get(pid, 0.0):
                try:
                    target = self.targets[pid] = _attach(pid)
                except NotPythonError:
                    self._not_python[pid] = ident
                    parts.append((pid, "-"))
                    continue
                except Exception:  # noqa: BLE001 - starting up, exiting, unsupported...
                    self._retry_at[pid] = now + self.RETRY
            if target is None:
                parts.append((pid, "?"))
                continue
            python_seen = True
            try:
                snap = target.sample(blocking=False)
            except Exception:  # noqa: BLE001
                parts.append((pid, ("error", now)))   # never equal twice: counts as a change
                continue
            parts.append((pid, tuple(sorted((t.thread_id, _stack_key(t)) for t in snap.threads))))
        for pid in [p for p in self.targets if p not in live]:
            self._drop(pid)
        for pid in [p for p in self._cpu if p not in live]:
            del self._cpu[pid]
        now = time.monotonic()   # attaching may have taken a while: measure from the end of the poll
        busy = (self._polled_at is not None and
                cpu_used >= self.busy_share * max(1e-3, now - self._polled_at))
        self._polled_at = now
        signature = tuple(sorted(parts, key=lambda x: x[0]))
        if not python_seen or busy or signature != self._signature:
            self._signature = signature
            self._changed_at = now
        return self.unchanged_for()

    def _drop(self, pid: int) -> None:
        target = self.targets.pop(pid, None)
        if target is not None:
            try:
                target.close()
            except Exception:  # noqa: BLE001
                pass
        self._not_python.pop(pid, None)
        self._retry_at.pop(pid, None)

    def close(self) -> None:
        for pid in list(self.targets):
            self._drop(pid)


def _exe(pid: int) -> str:
    from .process.procfs import exe
    try:
        return exe(pid)
    except SnapshotError:
        return ""


# ---------------------------------------------------------------------------
# Ending a tree
# ---------------------------------------------------------------------------
@dataclass
class Termination:
    terminated: List[int] = field(default_factory=list)   # exited after SIGTERM
    killed: List[int] = field(default_factory=list)       # needed SIGKILL
    survivors: List[int] = field(default_factory=list)    # still there after SIGKILL (should not happen)

    def describe(self) -> str:
        text = "sent SIGTERM to %d process(es)" % (len(self.terminated) + len(self.killed) + len(self.survivors))
        if self.killed:
            text += "; %d ignored it and got SIGKILL: pid %s" % (len(self.killed), ", ".join(map(str, self.killed)))
        if self.survivors:
            text += "; still alive: %s" % ", ".join(map(str, self.survivors))
        return text


def terminate_tree(root_pid: int, kill_after: float = 5.0, exclude: Iterable[int] = (),
                   also: Optional[Dict[int, Optional[float]]] = None) -> Termination:
    """SIGTERM every process of the tree, SIGKILL those still alive after ``kill_after`` s.

    ``also`` adds pids seen earlier (pid -> create time), so a process that was
    reparented away from the tree (a daemonized grandchild) is not forgotten;
    the create time guards against a reused pid.
    """
    psutil = _psutil()
    skip = set(exclude) | {os.getpid()}
    procs = {p.pid: p for p in process_tree(root_pid, skip)}
    for pid, created in (also or {}).items():
        if pid in procs or pid in skip:
            continue
        try:
            proc = psutil.Process(pid)
            if created is None or abs(proc.create_time() - created) < 0.01:
                procs[pid] = proc
        except psutil.Error:
            pass
    result = Termination()
    alive = []
    for proc in procs.values():
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.Error:
            pass
    gone, alive = _wait_gone(alive, kill_after)
    result.terminated = sorted(p.pid for p in gone)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    gone, alive = _wait_gone(alive, 5.0)
    result.killed = sorted(p.pid for p in gone)
    result.survivors = sorted(p.pid for p in alive)
    return result


def _wait_gone(procs: List[Any], timeout: float) -> Tuple[List[Any], List[Any]]:
    """Wait until each process exited (a zombie counts as exited; our own children are reaped)."""
    psutil = _psutil()
    deadline = time.monotonic() + max(0.0, timeout)
    alive = list(procs)
    gone: List[Any] = []
    while True:
        still = []
        for proc in alive:
            try:
                os.waitpid(proc.pid, os.WNOHANG)   # reap it if it is our child
            except ChildProcessError:
                pass
            except OSError:
                pass
            try:
                done = not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
            except psutil.Error:
                done = True
            (gone if done else still).append(proc)
        alive = still
        if not alive or time.monotonic() >= deadline:
            return gone, alive
        time.sleep(0.05)
