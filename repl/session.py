"""What a command runs against: the target, its latest snapshot, and where output goes.

The CLI builds a one-shot session; the REPL keeps one alive across commands
(selected thread and frame, background recordings).  Commands never attach
on their own: they ask the session, so every front end behaves the same.

REPL state kept here:

* the latest snapshot (kept after the target exits, so navigation still works);
* the selected thread (by thread id, so it survives a refresh) and frame index
  (0 = innermost);
* ``pause_lock``: every pause of the target (snapshot, sample) holds it, so a
  background recording and a foreground command never ptrace at the same time;
* background jobs (``record start``) by name;
* output styling (``color``) decided once by the front end;
* ``native`` / ``native_all``: whether snapshots merge C frames (``native on|all|off``);
* ``source``: where the data comes from (``LIVE`` here; a core, debugger or
  snapshot-file session sets its own), checked by ``repl.dispatch`` against
  each command's capability flags;
* ``dispatcher``: the ``repl.dispatch.Dispatcher`` running the current command.
"""
from __future__ import annotations

import struct
import sys
from _thread import RLock

from snapshot import SnapshotError, attach
from snapshot.errors import ProcessExitedError
from snapshot.model import Frame, Snapshot, ThreadStack

from .commands.base import CORE, LIVE, SNAPSHOT_FILE, CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Optional, TextIO, Tuple


_U64 = struct.Struct("<Q")

ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
        "magenta": "35", "cyan": "36"}


class Session:
    def __init__(self, pid: Optional[int] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None):
        self.pid = pid
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.target = None
        self.snapshot: Optional[Snapshot] = None
        self.frame_index = 0
        # -- REPL state ------------------------------------------------------
        self.thread_id: Optional[int] = None     # selected thread (survives refresh)
        self.color = False                       # ANSI colours on self.out
        self.interactive = False                 # a person at a terminal (live tables, screen clears)
        self.exited = False                      # the target process is gone
        self.pause_lock = RLock()      # _thread's: the same lock, without importing threading
        self.jobs: Dict[str, object] = {}        # background jobs (record)
        self.child = None                        # supervise.Child when we started the target
        self.source = LIVE                       # where the data comes from (commands.base sources)
        self.native = False                      # snapshots merge native frames (`native on`)
        self.native_all = False                  # ... with the interpreter's plumbing (`native all`)
        self.dispatcher = None                   # set by repl.dispatch while a command runs
        self.saved = None                        # snapshot.savefile.SavedSnapshot (source SNAPSHOT_FILE)
        self._globals_cache: Dict[Tuple[int, str], int] = {}
        self.with_tasks = False                  # snapshots include asyncio tasks (after `tasks`)
        self.task_id: Optional[int] = None       # selected asyncio task (`task ID`): bt/locals/print use it

    # -- styling -----------------------------------------------------------------
    def style(self, text: str, *names: str) -> str:
        if not self.color or not names:
            return text
        return "\x1b[%sm%s\x1b[0m" % (";".join(ANSI[n] for n in names), text)

    def note(self, text: str) -> None:
        """A one-line message to the user (on stderr, so scripted stdout stays data)."""
        self.err.write(text + "\n")
        self.err.flush()

    # -- target ----------------------------------------------------------------
    def get_target(self, pid: Optional[int] = None):
        if self.source == SNAPSHOT_FILE and (pid is None or pid == self.pid):
            return self._file_target()
        if pid is not None and pid != self.pid:
            self.detach()
            self.pid = pid
            self.source = LIVE
        if self.pid is None:
            raise CommandError("no target: give --pid PID (or `attach PID` in the REPL)")
        if self.target is None:
            if self.exited:
                raise ProcessExitedError("process %d exited (the last snapshot is still available)" % self.pid)
            self.target = attach(self.pid)
            from snapshot.binary import cache_warnings
            for text in cache_warnings():
                self.note("warning: " + text)
            if self.target.pid != self.pid:
                # the pid was a thread id: say so once, and label everything with the process
                self.note("pid %d is a thread of process %d: showing process %d" % (self.pid, self.target.pid,
                                                                                  self.target.pid))
                self.pid = self.target.pid
        return self.target

    def open_core(self, path: str, search_path=(), executable: Optional[str] = None) -> None:
        """Read a core file instead of a live process (nothing to pause, resume or follow)."""
        from snapshot.process.core import CoreProcess
        from snapshot.target import Target
        self.detach()
        process = CoreProcess(path, search_path, executable)
        try:
            self.target = Target(process)
        except BaseException:
            process.close()
            raise
        self.pid = process.pid
        self.source = CORE
        self.core_path = path
        for warning in process.warnings():
            self.note("warning: " + warning)

    def open_snapshot_file(self, path: str) -> None:
        """Read a saved snapshot file (``pyspy-snapshot save``): its stacks as saved, and
        values (``print``) from the memory it holds; nothing runs, pauses or exits."""
        from snapshot import savefile
        saved = savefile.load(path)
        self.detach()
        self.saved = saved
        self.snapshot_path = path
        self.pid = saved.snapshot.pid
        self.source = SNAPSHOT_FILE
        self._set_snapshot(saved.snapshot)

    def _file_target(self):
        """The engine over the file's memory (made on first use: `print`)."""
        if self.saved is None:
            raise CommandError("no snapshot file is open (pyspy-repl --load FILE)")
        if self.target is None:
            from snapshot.target import Target
            self.target = Target(self.saved.process())
        return self.target

    def detach(self) -> None:
        if self.target is not None:
            self.target.close()
        self.target = None
        self.snapshot = None
        self.thread_id = None
        self.task_id = None
        self.frame_index = 0
        self.exited = False
        self._globals_cache.clear()
        if self.source in (CORE, SNAPSHOT_FILE):
            self.source = LIVE      # `attach PID` after a core or a file reads a live process
            self.saved = None

    def take_snapshot(self, locals: bool = True, blocking: bool = True, max_repr: int = 1024,
                      pid: Optional[int] = None, tasks: Optional[bool] = None,
                      native: Optional[bool] = None, native_all: Optional[bool] = None) -> Snapshot:
        """A new snapshot; ``tasks`` adds asyncio tasks (default: if an earlier command asked for them);
        ``native``/``native_all`` None: the session's setting (``native on``)."""
        if self.source == SNAPSHOT_FILE and (pid is None or pid == self.pid):
            if self.saved is None:
                raise CommandError("no snapshot file is open (pyspy-repl --load FILE)")
            if locals and not self.saved.has_locals and not getattr(self, "_told_no_locals", False):
                self._told_no_locals = True
                self.note("note: this snapshot file was saved without locals (save --no-locals)")
            if tasks:
                self.with_tasks = True
            snapshot = self.saved.snapshot_for(locals, max_repr, tasks if tasks is not None else self.with_tasks)
            if (native or native_all) and not any(f.is_native for t in snapshot.threads for f in t.frames):
                self.note("note: this snapshot file has no native frames (it was saved without native mode)")
            self._set_snapshot(snapshot)
            return snapshot
        target = self.get_target(pid)
        if tasks:
            self.with_tasks = True
        kwargs = {"tasks": True} if (tasks if tasks is not None else self.with_tasks) else {}
        native_all = self.native_all if native_all is None else native_all
        if (self.native if native is None else native) or native_all:
            kwargs.update(native=True, native_all=native_all)
        try:
            with self.pause_lock:
                snapshot = target.snapshot(locals=locals, blocking=blocking, max_repr=max_repr, **kwargs)
        except ProcessExitedError:
            self.mark_exited()
            raise
        self._set_snapshot(snapshot)
        return snapshot

    def close(self) -> None:
        self.detach()

    # -- REPL helpers ------------------------------------------------------------
    def target_alive(self) -> bool:
        if self.pid is None:
            return False
        if self.source in (CORE, SNAPSHOT_FILE):
            return True   # a core never exits (its pid may be anyone's now)
        if self.child is not None and self.child.pid == self.pid:
            return self.child.alive()
        import psutil
        try:
            return psutil.Process(self.pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:   # hidden from us (AccessDenied) is not gone
            return True

    def mark_exited(self) -> bool:
        """Record that the target is gone (keeps the last snapshot); True the first time."""
        if self.exited:
            return False
        self.exited = True
        if self.target is not None:
            try:
                self.target.close()
            except Exception:  # noqa: BLE001 - closing a dead target must not fail the session
                pass
        self.target = None
        return True

    def check_alive(self) -> Optional[str]:
        """A message when the target has just exited (once), else None."""
        if self.pid is not None and not self.exited and (self.target is not None or self.snapshot is not None):
            if not self.target_alive():
                self.mark_exited()
                kept = "; the last snapshot is kept (threads, bt, frame, locals still work)" if self.snapshot else ""
                return "target process %d exited%s" % (self.pid, kept)
        return None

    def ensure_snapshot(self, locals: bool = True, fresh: bool = False) -> Snapshot:
        """The latest snapshot; takes one (with locals) when there is none yet, or when ``fresh``."""
        if fresh:
            return self.refresh()
        if self.snapshot is None:
            return self.take_snapshot(locals=locals)
        if locals and not self.exited and self._missing_locals():
            return self.take_snapshot(locals=True)
        return self.snapshot

    def _missing_locals(self) -> bool:
        thread = self.current_thread(required=False)
        return bool(thread and thread.frames and thread.frames[0].locals is None)

    def refresh(self) -> Snapshot:
        return self.take_snapshot(locals=True)

    def _set_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        if self.task_id is not None:
            task = snapshot.task(self.task_id) if snapshot.tasks else None
            if task is not None:
                self.frame_index = min(self.frame_index, max(0, len(task.frames) - 1))
                return
            self.task_id = None
            self.frame_index = 0
        thread = snapshot.thread(self.thread_id) if self.thread_id is not None else None
        if thread is None:
            thread = default_thread(snapshot)
            self.frame_index = 0
        self.thread_id = thread.thread_id if thread is not None else None
        if thread is not None and self.frame_index >= len(thread.frames):
            self.frame_index = max(0, len(thread.frames) - 1)

    def select_task(self, task) -> None:
        """Select an asyncio task: until a thread is selected, bt/frame/locals/print use its frames."""
        if task.task_id != self.task_id:
            self.frame_index = 0
        self.task_id = task.task_id

    def _task_as_thread(self, snapshot) -> Optional[ThreadStack]:
        task = snapshot.task(self.task_id) if snapshot is not None and snapshot.tasks else None
        if task is None:
            return None
        return ThreadStack(task.thread_id or 0, None, "task %s" % task.name, False, task.state != "running",
                           task.frames, task.interpreter_id)

    def current_thread(self, required: bool = True) -> Optional[ThreadStack]:
        snapshot = self.snapshot
        if self.task_id is not None:
            as_thread = self._task_as_thread(snapshot)
            if as_thread is not None:
                return as_thread
        thread = snapshot.thread(self.thread_id) if snapshot is not None and self.thread_id is not None else None
        if thread is None and required:
            if snapshot is None:
                raise CommandError("no snapshot yet: attach to a process first")
            raise CommandError("no thread selected")
        return thread

    def current_frame(self, required: bool = True) -> Optional[Frame]:
        thread = self.current_thread(required)
        if thread is None:
            return None
        if not thread.frames:
            if required:
                raise CommandError("thread %s has no Python frames" % thread_label(thread))
            return None
        return thread.frames[min(self.frame_index, len(thread.frames) - 1)]

    def select_thread(self, key: str) -> ThreadStack:
        snapshot = self.ensure_snapshot()
        thread = find_thread(snapshot, key)
        if thread is None and not self.exited and self.pid is not None:
            snapshot = self.refresh()          # a thread started since the last snapshot?
            thread = find_thread(snapshot, key)
        if thread is None:
            raise CommandError("no thread %r (see `threads`)" % key)
        if thread.thread_id != self.thread_id or self.task_id is not None:
            self.frame_index = 0
        self.task_id = None
        self.thread_id = thread.thread_id
        return thread

    def select_frame(self, index: int) -> Frame:
        thread = self.current_thread()
        if not thread.frames:
            raise CommandError("thread %s has no Python frames" % thread_label(thread))
        if not 0 <= index < len(thread.frames):
            raise CommandError("no frame %d (frames 0..%d)" % (index, len(thread.frames) - 1))
        self.frame_index = index
        return thread.frames[index]

    def prompt_text(self) -> str:
        if self.pid is None:
            return "(pyspy) "
        parts = ["pid %d" % self.pid if self.source != SNAPSHOT_FILE else "saved pid %d" % self.pid]
        if self.exited:
            parts[0] += " exited"
        thread = self.current_thread(required=False)
        if thread is not None:
            parts.append(thread_label(thread))
            if thread.frames:
                parts.append("#%d %s" % (self.frame_index, thread.frames[self.frame_index].function))
        return "(pyspy %s) " % " ".join(parts)

    # -- reading the target's objects -------------------------------------------------
    def objects(self):
        """The target's ObjectReader (needs a live target)."""
        if self.exited:
            raise ProcessExitedError("process %d exited: values can no longer be read "
                                     "(the last snapshot's reprs are still shown by `locals`)" % self.pid)
        return self.get_target().objects

    def modules_dict_addr(self) -> int:
        """Address of the interpreter's ``sys.modules`` dict (read from the interpreter state)."""
        target = self.get_target()
        interp = target.walker.interpreter_addr()
        struct_ = target.layout.PyInterpreterState
        field = "imports_modules" if "imports_modules" in struct_ else "modules"
        modules = _U64.unpack(target.memory.read(interp + struct_.fields[field].offset, 8))[0]
        if not modules:
            raise CommandError("the target has no sys.modules yet")
        return modules

    def module_addr(self, name: str) -> Optional[int]:
        return self.objects().dict_get(self.modules_dict_addr(), name)

    def frame_module(self, frame: Frame) -> Tuple[Optional[int], str]:
        """(module address, module name) of the module a frame's code belongs to.

        The walker does not expose a frame's globals, so the module is found
        in ``sys.modules`` by ``__file__`` == the frame's filename; ``__main__``
        when nothing matches (scripts run as ``python script.py`` have it as
        ``__file__`` too, ``python -c`` code has none).
        """
        objects = self.objects()
        key = (self.pid or 0, frame.filename)
        cached = self._globals_cache.get(key)
        if cached is not None:
            try:
                file_addr = objects.getattr(cached, "__file__")
                if file_addr and objects.is_text(file_addr) and objects.string(file_addr) == frame.filename:
                    return cached, self._module_name(cached)
            except SnapshotError:
                pass
            del self._globals_cache[key]
        modules = self.modules_dict_addr()
        main = None
        for key_addr, mod_addr in objects.dict_items(modules):
            try:
                if objects.kind(mod_addr) != "module":
                    continue
                file_addr = objects.getattr(mod_addr, "__file__")
                if file_addr and objects.is_text(file_addr) and objects.string(file_addr) == frame.filename:
                    self._globals_cache[key] = mod_addr
                    return mod_addr, self._module_name(mod_addr)
                if objects.is_text(key_addr) and objects.string(key_addr) == "__main__":
                    main = mod_addr
            except SnapshotError:
                continue
        return main, "__main__"

    def _module_name(self, mod_addr: int) -> str:
        objects = self.objects()
        name = objects.getattr(mod_addr, "__name__")
        if name and objects.is_text(name):
            return objects.string(name, 1024)
        return "?"

    # -- background jobs ----------------------------------------------------------------
    def stop_jobs(self) -> None:
        for name, job in list(self.jobs.items()):
            stop = getattr(job, "stop", None)
            if stop is None:
                continue
            try:
                message = stop()
                if message:
                    self.note(message)
            except Exception as e:  # noqa: BLE001
                self.note("%s: %s" % (name, e))
        self.jobs.clear()


def default_thread(snapshot: Snapshot) -> Optional[ThreadStack]:
    """The main thread when there is one, else the first thread with frames, else the first."""
    for thread in snapshot.threads:
        if thread.name == "MainThread":
            return thread
    for thread in snapshot.threads:
        if thread.frames:
            return thread
    return snapshot.threads[0] if snapshot.threads else None


def find_thread(snapshot: Snapshot, key: str) -> Optional[ThreadStack]:
    """A thread by thread id (decimal or hex), OS thread id, list position (``#N``) or name."""
    text = key.strip()
    if text.startswith("#") and text[1:].isdigit():
        index = int(text[1:])
        return snapshot.threads[index] if index < len(snapshot.threads) else None
    number = None
    try:
        number = int(text, 0)
    except ValueError:
        try:
            number = int(text, 16)
        except ValueError:
            number = None
    if number is not None:
        for thread in snapshot.threads:
            if number in (thread.thread_id, thread.native_id):
                return thread
    for thread in snapshot.threads:
        if thread.name == text:
            return thread
    matches = [t for t in snapshot.threads if t.name and t.name.lower().startswith(text.lower())]
    return matches[0] if len(matches) == 1 else None


def thread_label(thread: ThreadStack) -> str:
    if thread.name:
        return thread.name
    return str(thread.native_id) if thread.native_id else "%#x" % thread.thread_id


__all__ = ["Session", "SnapshotError", "default_thread", "find_thread", "thread_label"]
