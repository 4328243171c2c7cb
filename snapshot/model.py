"""The data model: what a snapshot of a Python process is, as plain values.

Frozen, slotted dataclasses so snapshots are hashable (cheap aggregation of
identical stacks while sampling) and safe to share between threads.  The
JSON form (``to_dict``) keeps py-spy's field names, so runbooks written for
``py-spy dump --json`` keep working, and adds ours next to them.
"""
from __future__ import annotations

import os
from layouts.records import dataclass, field

from .hostcompat import FROZEN as _FROZEN

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, List, Optional, Tuple


#: Version of the ``to_dict`` form. 1: the first versioned form (format_version,
#: interpreter_id, is_entry, native-frame fields; a thread's optional ``status`` and
#: ``native_error``, absent when unset, need no new version).  ``from_dict`` reads every
#: version up to this one; a form without ``format_version`` is version 0.
FORMAT_VERSION = 1


@dataclass(**_FROZEN)
class Local:
    name: str
    repr: str
    #: Address of the value in the target (0 for values that are not objects, e.g. tagged ints).
    addr: int
    is_argument: bool

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "addr": self.addr, "arg": self.is_argument, "repr": self.repr}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Local":
        return cls(data["name"], data.get("repr"), data.get("addr", 0), data.get("arg", False))


@dataclass(**_FROZEN)
class Frame:
    function: str
    filename: str
    line: int
    locals: Optional[Tuple[Local, ...]] = None
    #: A C frame (from native unwinding), not a Python one.
    is_native: bool = False
    #: An eval-loop call started with this frame, as CPython marks it (every Python frame
    #: before 3.11; from 3.11 only the first frame of each ``_PyEval_EvalFrame`` call).
    is_entry: bool = False
    #: Native frames: the shared object the code is in.
    module: Optional[str] = None
    #: Native frames: the instruction address.
    address: Optional[int] = None
    #: Address of the frame's globals dict (snapshots with locals only), so a
    #: front end can resolve global names exactly as the frame would.
    globals_addr: Optional[int] = None

    @property
    def short_filename(self) -> str:
        if self.is_native:
            return os.path.basename(self.module or self.filename or "")   # the library's name
        return short_filename(self.filename)

    def without_locals(self) -> "Frame":
        if self.locals is None:
            return self
        return Frame(self.function, self.filename, self.line, None, self.is_native, self.is_entry,
                     self.module, self.address)

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "name": self.function,
            "filename": self.filename,
            "module": self.module,
            "short_filename": self.short_filename,
            "line": self.line,
            "locals": None if self.locals is None else [local.to_dict() for local in self.locals],
            "is_entry": self.is_entry,
        }
        if self.is_native:
            data["is_native"] = True
        if self.address is not None:
            data["address"] = self.address
        if self.globals_addr:
            data["globals_addr"] = self.globals_addr
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Frame":
        loc = data.get("locals")
        return cls(data["name"], data["filename"], data["line"],
                   None if loc is None else tuple(Local.from_dict(x) for x in loc),
                   bool(data.get("is_native", False)), bool(data.get("is_entry", False)), data.get("module"),
                   data.get("address"), data.get("globals_addr"))


@dataclass(**_FROZEN)
class HandledException:
    """The exception a thread is handling (inside ``except``), read from memory, never by calling str().

    ``message`` is ``args[0]`` when it is a str, else the repr of the single
    argument or of the ``args`` tuple (what ``BaseException.__str__`` prints).
    """

    type: str
    message: str
    addr: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {"type": self.type, "message": self.message, "addr": self.addr}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "HandledException":
        return cls(data.get("type", ""), data.get("message", ""), data.get("addr", 0))


#: ``ThreadStack.status`` values.
THREAD_STATUSES = ("holds_gil", "waiting_for_gil", "running", "idle")


@dataclass(**_FROZEN)
class ThreadStack:
    thread_id: int
    native_id: Optional[int]
    name: Optional[str]
    holds_gil: bool
    is_idle: bool
    frames: Tuple[Frame, ...]  # innermost first
    #: ``PyInterpreterState.id`` of the interpreter the thread runs in (0: the main interpreter).
    #: Last, with a default (not where DESIGN.md lists it), so positional callers keep working.
    interpreter_id: int = 0
    #: What the thread is doing: one of THREAD_STATUSES from the GIL and run state (holds the GIL,
    #: waiting for it where the target records requests (3.15), running, idle), or what its native
    #: frames say ( "waiting for the GIL", "collecting garbage", "unknown" where a stripped interpreter
    #: cannot name the function), which wins; None in snapshots saved before the field existed.
    status: Optional[str] = None
    #: Native mode: why the native and Python frames could not be merged (the frames are then
    #: the Python stack alone), or why the thread has no native frames.
    native_error: Optional[str] = None
    #: The thread's interpreter is inside a garbage collection (its GC state's ``collecting``).
    gc_collecting: bool = False
    #: The exception the thread is handling, if any.
    exception: Optional[HandledException] = None

    def to_dict(self, pid: Optional[int] = None) -> Dict[str, Any]:
        data = {
            "pid": pid,
            "thread_id": self.thread_id,
            "thread_name": self.name,
            "os_thread_id": self.native_id,
            "active": not self.is_idle,
            "owns_gil": self.holds_gil,
            "frames": [frame.to_dict() for frame in self.frames],
            "process_info": None,
            "interpreter_id": self.interpreter_id,
            "gc_collecting": self.gc_collecting,
            "exception": self.exception.to_dict() if self.exception is not None else None,
        }
        if self.status is not None:
            data["status"] = self.status
        if self.native_error is not None:
            data["native_error"] = self.native_error
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ThreadStack":
        return cls(data["thread_id"], data.get("os_thread_id"), data.get("thread_name"),
                   bool(data.get("owns_gil")), not data.get("active", True),
                   tuple(Frame.from_dict(f) for f in data.get("frames", ())),
                   data.get("interpreter_id", 0), data.get("status"), data.get("native_error"),
                   bool(data.get("gc_collecting", False)),
                   HandledException.from_dict(data["exception"]) if data.get("exception") else None)


@dataclass(**_FROZEN)
class AsyncTask:
    """One asyncio task: its coroutine chain and who awaits whom.

    ``task_id`` is the task object's address (``id(task)`` in the target, as
    ``python -m asyncio pstree`` shows it).  ``frames`` is exactly the task's
    coroutine chain, innermost first (a running task: the thread's frames down
    to the task's own coroutine frame).  ``awaits`` / ``awaited_by`` are task
    ids; ``inferred`` says they were inferred (before 3.14: from ``_fut_waiter``,
    gather children and TaskGroup membership) rather than read as recorded.
    """

    task_id: int
    name: str
    #: "pending", "running", "done" or "cancelled".
    state: str
    thread_id: Optional[int]
    frames: Tuple[Frame, ...]
    awaits: Tuple[int, ...] = ()
    awaited_by: Tuple[int, ...] = ()
    inferred: bool = False
    #: What the task waits on when it is not another task (e.g. "Future at 0x...").
    waiting_on: Optional[str] = None
    interpreter_id: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {"task_id": self.task_id, "name": self.name, "state": self.state, "thread_id": self.thread_id,
                "awaits": list(self.awaits), "awaited_by": list(self.awaited_by), "inferred": self.inferred,
                "waiting_on": self.waiting_on, "interpreter_id": self.interpreter_id,
                "frames": [frame.to_dict() for frame in self.frames]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "AsyncTask":
        return cls(data["task_id"], data.get("name", ""), data.get("state", "pending"), data.get("thread_id"),
                   tuple(Frame.from_dict(f) for f in data.get("frames", ())),
                   tuple(data.get("awaits", ())), tuple(data.get("awaited_by", ())),
                   bool(data.get("inferred", False)), data.get("waiting_on"), data.get("interpreter_id", 0))


@dataclass(**_FROZEN)
class Snapshot:
    pid: int
    python_version: str
    executable: str
    taken_at_ns: int
    threads: Tuple[ThreadStack, ...]
    command_line: Tuple[str, ...] = field(default=())
    #: The ``to_dict`` form version (always the current one in memory).
    format_version: int = FORMAT_VERSION
    #: asyncio tasks of every event loop (empty unless asked for: ``dump --async``).
    tasks: Tuple[AsyncTask, ...] = field(default=())

    def task(self, key) -> Optional[AsyncTask]:
        """Find a task by id (int, decimal or hex string), position (#N) or name."""
        text = str(key).strip()
        if text.startswith("#") and text[1:].isdigit():
            index = int(text[1:])
            return self.tasks[index] if index < len(self.tasks) else None
        number = key if isinstance(key, int) else None
        if number is None:
            try:
                number = int(text, 0)
            except ValueError:
                number = None
        for task in self.tasks:
            if number is not None and task.task_id == number:
                return task
        for task in self.tasks:
            if task.name == text:
                return task
        return None

    def thread(self, key) -> Optional[ThreadStack]:
        """Find a thread by thread id, OS id, decimal/hex string, or name."""
        for thread in self.threads:
            if key in (thread.thread_id, thread.native_id):
                return thread
        text = str(key)
        for thread in self.threads:
            if text in (str(thread.thread_id), hex(thread.thread_id), str(thread.native_id), thread.name):
                return thread
        return None

    def to_dict(self) -> Dict[str, Any]:
        """The saved form: versioned, and read back exactly by ``from_dict``."""
        return {
            "format_version": FORMAT_VERSION,
            "pid": self.pid,
            "python_version": self.python_version,
            "executable": self.executable,
            "command_line": list(self.command_line),
            "taken_at_ns": self.taken_at_ns,
            "threads": [thread.to_dict(self.pid) for thread in self.threads],
            "tasks": [task.to_dict() for task in self.tasks],
        }

    def threads_json(self) -> List[Dict[str, Any]]:
        """py-spy's ``dump --json`` shape: a list of threads."""
        return [thread.to_dict(self.pid) for thread in self.threads]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Snapshot":
        """Read any form up to ``FORMAT_VERSION`` (fields a form lacks take their defaults)."""
        version = data.get("format_version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            from .errors import SnapshotFormatError
            raise SnapshotFormatError("snapshot format %r is newer than this pyspy-repl reads (%d)"
                                      % (version, FORMAT_VERSION))
        return cls(data["pid"], data["python_version"], data.get("executable", ""),
                   data.get("taken_at_ns", 0), tuple(ThreadStack.from_dict(t) for t in data["threads"]),
                   tuple(data.get("command_line", ())),
                   tasks=tuple(AsyncTask.from_dict(t) for t in data.get("tasks", ())))


#: short_filename's answers by file name (a dump renders every frame's; a few dozen files).
_SHORT: Dict[str, str] = {}
_SHORT_MAX = 4096


def short_filename(filename: str) -> str:
    """py-spy's short form: the path relative to the longest matching sys.path-like prefix.

    Without access to the target's sys.path we keep the last two components
    for package files and the base name otherwise, which is what a reader
    scans for.  Remembered per file name: the same few files come back in every frame.
    """
    short = _SHORT.get(filename)
    if short is None:
        if len(_SHORT) >= _SHORT_MAX:
            _SHORT.clear()
        short = _SHORT[filename] = _shorten(filename)
    return short


def _shorten(filename: str) -> str:
    if not filename or filename.startswith("<"):
        return filename
    for marker in ("/site-packages/", "/dist-packages/"):
        index = filename.rfind(marker)
        if index >= 0:
            return filename[index + len(marker):]
    marker = "/lib/python"
    index = filename.rfind(marker)
    if index >= 0:
        rest = filename[index + len(marker):]
        slash = rest.find("/")
        if slash >= 0:
            return rest[slash + 1:]
    return os.path.basename(filename)
