"""What waiting looks like: the one table of known idle and blocking functions.

Two users read it:

* ``Target`` marks a sampled thread *idle* when its innermost frame is an
  entry with ``idle`` set (py-spy's rule: the OS may report such a thread
  running while it spins briefly inside the wait, so its run state alone is
  not enough);
* ``hang`` names what a stuck thread waits on: the innermost run of library
  frames that are entries of this table gives the API (``Event.wait`` over
  ``Condition.wait``) and the kind of wait.

Columns of ``WAITS``: (function name, file suffix, kind, API label, idle).
The function name is the last part of a qualified name (``Event.wait`` ->
``wait``); the suffix is matched against the frame's file name on a path
boundary (``/`` separated).  Kinds: ``lock``, ``condition``, ``barrier``,
``join`` (a thread or process), ``queue``, ``recv`` (a pipe, socket or
connection), ``select`` (select/poll/an event loop), ``sleep``.

A C call (``lock.acquire()``, ``time.sleep()``) has no Python frame of its
own, so ``SOURCE_WAITS`` matches the calling line's source text instead, and
``SYSCALLS`` names the kernel call a blocked thread sleeps in.  The regular
expressions are compiled on first use: ``Target`` imports this module on the
one-shot ``dump`` path, which never classifies a hang.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Pattern, Tuple


#: (function, file suffix, kind, API label, idle)
WAITS: Tuple[Tuple[str, str, str, str, bool], ...] = (
    ("wait", "threading.py", "condition", "Condition.wait", True),
    ("wait_for", "threading.py", "condition", "Condition.wait_for", False),
    ("_wait", "threading.py", "barrier", "Barrier.wait", False),
    ("acquire", "threading.py", "lock", "Semaphore.acquire", False),
    ("_acquire_restore", "threading.py", "lock", "RLock.acquire", False),
    ("_wait_for_tstate_lock", "threading.py", "join", "Thread.join", False),
    ("join", "threading.py", "join", "Thread.join", False),
    ("get", "queue.py", "queue", "queue.Queue.get", False),
    ("put", "queue.py", "queue", "queue.Queue.put", False),
    ("join", "queue.py", "queue", "queue.Queue.join", False),
    ("get", "Queue.py", "queue", "queue.Queue.get", False),     # 2.7's module name
    ("put", "Queue.py", "queue", "queue.Queue.put", False),
    ("join", "Queue.py", "queue", "queue.Queue.join", False),
    ("get", "multiprocessing/queues.py", "queue", "multiprocessing.Queue.get", False),
    ("put", "multiprocessing/queues.py", "queue", "multiprocessing.Queue.put", False),
    ("join", "multiprocessing/queues.py", "queue", "multiprocessing.JoinableQueue.join", False),
    ("recv", "multiprocessing/connection.py", "recv", "Connection.recv", False),
    ("recv_bytes", "multiprocessing/connection.py", "recv", "Connection.recv_bytes", False),
    ("_recv_bytes", "multiprocessing/connection.py", "recv", "Connection.recv_bytes", False),
    ("_recv", "multiprocessing/connection.py", "recv", "Connection.recv", False),
    ("poll", "multiprocessing/connection.py", "select", "Connection.poll", False),
    ("_poll", "multiprocessing/connection.py", "select", "Connection.poll", False),
    ("wait", "multiprocessing/connection.py", "select", "multiprocessing.connection.wait", False),
    ("accept", "multiprocessing/connection.py", "recv", "Listener.accept", False),
    ("join", "multiprocessing/process.py", "join", "Process.join", False),
    ("wait", "multiprocessing/popen_fork.py", "join", "Process.join", False),
    ("wait", "multiprocessing/forking.py", "join", "Process.join", False),      # 2.7's Popen
    ("poll", "multiprocessing/forking.py", "join", "Process.join", False),
    ("poll", "multiprocessing/popen_fork.py", "join", "Process.join", False),
    ("wait", "multiprocessing/popen_forkserver.py", "join", "Process.join", False),
    ("poll", "multiprocessing/popen_forkserver.py", "join", "Process.join", False),
    ("wait", "multiprocessing/popen_spawn_posix.py", "join", "Process.join", False),
    ("poll", "multiprocessing/popen_spawn_posix.py", "join", "Process.join", False),
    ("get", "multiprocessing/pool.py", "condition", "AsyncResult.get", False),
    ("wait", "multiprocessing/pool.py", "condition", "AsyncResult.wait", False),
    ("join", "multiprocessing/pool.py", "join", "Pool.join", False),
    ("acquire", "multiprocessing/synchronize.py", "lock", "multiprocessing.Lock.acquire", False),
    ("__enter__", "multiprocessing/synchronize.py", "lock", "multiprocessing.Lock.acquire", False),
    ("wait", "multiprocessing/synchronize.py", "condition", "multiprocessing.Condition.wait", False),
    ("_callmethod", "multiprocessing/managers.py", "recv", "manager call", False),
    ("select", "selectors.py", "select", "selectors.select", True),
    ("poll", "selectors.py", "select", "selectors.poll", True),
    ("wait", "subprocess.py", "join", "Popen.wait", False),
    ("_wait", "subprocess.py", "join", "Popen.wait", False),
    ("_try_wait", "subprocess.py", "join", "Popen.wait", False),
    ("communicate", "subprocess.py", "join", "Popen.communicate", False),
    ("_communicate", "subprocess.py", "join", "Popen.communicate", False),
    ("accept", "socket.py", "recv", "socket.accept", False),
    ("readinto", "socket.py", "recv", "socket read", False),
    ("result", "concurrent/futures/_base.py", "condition", "Future.result", False),
    ("wait", "concurrent/futures/_base.py", "condition", "concurrent.futures.wait", False),
    ("as_completed", "concurrent/futures/_base.py", "condition", "concurrent.futures.as_completed", False),
    ("__get_result", "concurrent/futures/_base.py", "condition", "Future.result", False),
    # event loops outside the standard library (idle in samples, as py-spy treats them)
    ("select", "asyncore.py", "select", "asyncore.select", True),
    ("poll", "asyncore.py", "select", "asyncore.poll", True),
    ("poll2", "asyncore.py", "select", "asyncore.poll", True),
    ("poll", "zmq/sugar/poll.py", "select", "zmq.Poller.poll", True),
    ("wait", "gevent/hub.py", "select", "gevent hub wait", True),
    ("poll", "tornado/ioloop.py", "select", "tornado IOLoop.poll", True),
)

# function -> ((suffix, kind, label, idle), ...): one dict lookup per frame on the hot path
_BY_FUNCTION: Dict[str, Tuple[Tuple[str, str, str, bool], ...]] = {}
for _function, _suffix, _kind, _label, _idle in WAITS:
    _BY_FUNCTION[_function] = _BY_FUNCTION.get(_function, ()) + ((_suffix, _kind, _label, _idle),)
del _function, _suffix, _kind, _label, _idle


def _on_boundary(filename: str, suffix: str) -> bool:
    if not filename.endswith(suffix):
        return False
    cut = len(filename) - len(suffix)
    return cut == 0 or filename[cut - 1] in "/\\"


def _entry(function: str, filename: str) -> Optional[Tuple[str, str, str, bool]]:
    entries = _BY_FUNCTION.get(function.rsplit(".", 1)[-1])
    if entries is None:
        return None
    filename = filename.replace("\\", "/")
    for entry in entries:
        if _on_boundary(filename, entry[0]):
            return entry
    return None


def is_idle_function(function: str, filename: str) -> bool:
    """True when a thread whose innermost frame is this function counts as idle."""
    entry = _entry(function, filename)
    return entry is not None and entry[3]


def library_wait(function: str, filename: str) -> Optional[Tuple[str, str]]:
    """(kind, API label) when the frame is a known blocking function, else None.

    threading's qualified names say more than the table (``Event.wait`` vs
    ``Condition.wait``, ``BoundedSemaphore.acquire``); elsewhere the table's
    label is clearer (``BaseProcess.join`` -> ``Process.join``).
    """
    entry = _entry(function, filename)
    if entry is None:
        return None
    suffix, kind, label, _ = entry
    if suffix == "threading.py" and "." in function and not function.startswith("<"):
        label = function
    return kind, label


#: Source-line patterns for C calls without a Python frame: (regex, ignore case, kind, label).
#: Kind ``lock?``: a lock only if the kernel says the thread sleeps in a futex.
SOURCE_WAITS: Tuple[Tuple[str, bool, str, str], ...] = (
    (r"\.acquire\s*\(", False, "lock", "lock.acquire()"),
    (r"^\s*(async\s+)?with\b.*(lock|mutex|sem|cond|guard)", True, "lock", "with <lock>: (acquire)"),
    (r"^\s*with\b", False, "lock?", "with <lock>: (acquire)"),
    (r"\.join\s*\(", False, "join", "join()"),
    (r"\bsleep\s*\(", False, "sleep", "sleep()"),
    (r"\.wait\s*\(|\bwait\s*\(", False, "condition", "wait()"),
    (r"\.get\s*\(", False, "queue", "get()"),
    (r"\.put\s*\(", False, "queue", "put()"),
    (r"\b(select|poll|epoll|kqueue)\b[\w.]*\s*\(", False, "select", "select/poll"),
    (r"\.(recv\w*|accept|read\w*|readline)\s*\(|\binput\s*\(", False, "recv", "read/recv"),
    (r"waitpid|\.communicate\s*\(", False, "join", "waitpid"),
)
_COMPILED: List[Tuple[Pattern[str], str, str]] = []


def source_waits() -> List[Tuple[Pattern[str], str, str]]:
    """``SOURCE_WAITS`` compiled: (pattern, kind, label), in order."""
    if not _COMPILED:
        import re
        _COMPILED.extend((re.compile(pattern, re.IGNORECASE if nocase else 0), kind, label)
                         for pattern, nocase, kind, label in SOURCE_WAITS)
    return _COMPILED


#: Blocking system calls by number: {machine: {nr: (name, kind)}}.
SYSCALLS: Dict[str, Dict[int, Tuple[str, str]]] = {
    "x86_64": {0: ("read", "recv"), 7: ("poll", "select"), 23: ("select", "select"),
               35: ("nanosleep", "sleep"), 45: ("recvfrom", "recv"), 47: ("recvmsg", "recv"),
               43: ("accept", "recv"), 61: ("wait4", "join"), 202: ("futex", "lock"),
               230: ("clock_nanosleep", "sleep"), 232: ("epoll_wait", "select"), 247: ("waitid", "join"),
               270: ("pselect6", "select"), 271: ("ppoll", "select"), 281: ("epoll_pwait", "select"),
               288: ("accept4", "recv"), 441: ("epoll_pwait2", "select"), 34: ("pause", "sleep"),
               # A timed wait (nanosleep, poll, a futex with a timeout) that a stop interrupted
               # (another tool's pause, ours) resumes as restart_syscall: a timed wait.
               219: ("restart_syscall", "timed")},
    "aarch64": {63: ("read", "recv"), 73: ("ppoll", "select"), 72: ("pselect6", "select"),
                101: ("nanosleep", "sleep"), 115: ("clock_nanosleep", "sleep"), 207: ("recvfrom", "recv"),
                212: ("recvmsg", "recv"), 202: ("accept", "recv"), 242: ("accept4", "recv"),
                260: ("wait4", "join"), 95: ("waitid", "join"), 98: ("futex", "lock"),
                22: ("epoll_pwait", "select"), 441: ("epoll_pwait2", "select"),
                128: ("restart_syscall", "timed")},
}
#: How a report names a wait known only from the kernel, by kind.
KERNEL_LABELS: Dict[str, str] = {"lock": "futex wait (a lock, condition or event)", "sleep": "sleep",
                                 "select": "select/poll", "recv": "read/recv",
                                 "join": "waitpid (a child process)",
                                 "timed": "a timed wait resumed after a stop (sleep, poll or lock with a timeout)"}


def syscall_wait(machine: str, number: int) -> Optional[Tuple[str, str]]:
    """(system call name, kind) of a blocking call, or None when it is not one we know."""
    return SYSCALLS.get(machine, {}).get(number)


__all__ = ["WAITS", "SOURCE_WAITS", "SYSCALLS", "KERNEL_LABELS", "is_idle_function", "library_wait",
           "source_waits", "syscall_wait"]
