"""Every parse of ``/proc`` in the package, as small functions of a pid.

Why one module: the kernel's text formats (``stat`` with a ``comm`` that may
hold spaces and parentheses, ``status`` fields, ``maps`` lines, ``NSpid``)
were parsed in five places with five sets of bugs.  ``LiveProcess`` and its
helpers call these; nothing else in the engine opens ``/proc``.  Functions
return None (or an empty value) for a process or thread that is gone; only
``exe`` raises, because discovery must tell "exited" from "not allowed".
"""
from __future__ import annotations

import os

from ..errors import PermissionDeniedError, ProcessExitedError
from .base import MemoryMap

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


#: ``PF_KTHREAD`` in the ``flags`` field of ``stat``: a kernel thread has no user memory.
PF_KTHREAD = 0x00200000


def task_dir(pid: int, tid: Optional[int] = None) -> str:
    return "/proc/%d" % pid if tid is None else "/proc/%d/task/%d" % (pid, tid)


def exists(pid: int) -> bool:
    return os.path.exists("/proc/%d" % pid)


def read_bytes(pid: int, name: str, tid: Optional[int] = None) -> Optional[bytes]:
    try:
        with open("%s/%s" % (task_dir(pid, tid), name), "rb") as f:
            return f.read()
    except OSError:
        return None


def stat_fields(data: bytes) -> List[bytes]:
    """``stat`` fields from the state on (index 0 = state, 1 = ppid, 6 = flags); [] when malformed."""
    end = data.rfind(b")")
    return data[end + 2:].split() if end > 0 else []


def state(pid: int, tid: Optional[int] = None) -> Optional[str]:
    """The scheduler state letter ('R', 'S', 'D', 't', 'Z', ...); None when gone."""
    data = read_bytes(pid, "stat", tid)
    fields = stat_fields(data) if data else []
    return fields[0].decode() if fields else None


def state_from_stat(data: bytes) -> Optional[str]:
    end = data.rfind(b")")
    return chr(data[end + 2]) if 0 < end and end + 2 < len(data) else None


def is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (missing, or a zombie waiting to be reaped)."""
    return state(pid) in (None, "Z", "X")


def is_kernel_thread(pid: int) -> bool:
    data = read_bytes(pid, "stat")
    fields = stat_fields(data) if data else []
    try:
        return bool(int(fields[6]) & PF_KTHREAD)
    except (IndexError, ValueError):
        return False


def comm(pid: int, tid: Optional[int] = None) -> Optional[str]:
    data = read_bytes(pid, "comm", tid)
    return data.decode("utf-8", "replace").rstrip("\n") if data is not None else None


def cmdline(pid: int) -> List[str]:
    data = read_bytes(pid, "cmdline")
    return [p.decode(errors="replace") for p in data.split(b"\0") if p] if data else []


def exe(pid: int) -> str:
    """The executable's path; '' when the kernel will not say (a kernel thread)."""
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except FileNotFoundError:
        if exists(pid):
            return ""  # kernel threads have no exe link
        raise ProcessExitedError("process %d exited" % pid) from None
    except PermissionError:
        raise PermissionDeniedError("not allowed to inspect process %d" % pid) from None
    except OSError:
        return ""


def status(pid: int, tid: Optional[int] = None) -> Dict[str, str]:
    """``status`` as field name -> raw value text; {} when gone."""
    data = read_bytes(pid, "status", tid)
    result: Dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            result[key] = value.strip()
    return result


def thread_group(pid: int) -> Optional[int]:
    """The process (``Tgid``) a task id belongs to: itself for a process, another pid for a thread."""
    value = status(pid).get("Tgid")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def tracer_pid(pid: int, tid: Optional[int] = None) -> int:
    """The pid tracing ``pid`` (0 when none or unknown)."""
    try:
        return int(status(pid, tid).get("TracerPid", "0"))
    except ValueError:
        return 0


def ns_tids(pid: int, tid: Optional[int] = None) -> List[int]:
    """``NSpid``: the id in our namespace first, the target's own innermost one last."""
    try:
        return [int(x) for x in status(pid, tid).get("NSpid", "").split()]
    except ValueError:
        return []


def task_ids(pid: int) -> List[int]:
    """Thread ids (in our pid namespace), sorted; [] when the process is gone."""
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except (OSError, ValueError):
        return []


def task_ids_or_raise(pid: int) -> List[int]:
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except FileNotFoundError:
        raise ProcessExitedError("process %d exited" % pid) from None
    except PermissionError:
        raise PermissionDeniedError("not allowed to list the threads of process %d" % pid) from None


def parse_maps(text: str) -> List[MemoryMap]:
    result = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        start, _, end = parts[0].partition("-")
        try:
            result.append(MemoryMap(int(start, 16), int(end, 16), parts[1], int(parts[2], 16),
                                    parts[5].strip() if len(parts) > 5 else ""))
        except ValueError:
            continue
    return result


def maps(pid: int) -> List[MemoryMap]:
    try:
        with open("/proc/%d/maps" % pid) as f:
            return parse_maps(f.read())
    except FileNotFoundError:
        raise ProcessExitedError("process %d exited" % pid) from None
    except PermissionError:
        raise PermissionDeniedError("not allowed to read the memory map of process %d" % pid) from None
    except OSError as e:
        raise ProcessExitedError("process %d: memory map unreadable (%s)" % (pid, e.strerror)) from None


def mem_path(pid: int) -> str:
    return "/proc/%d/mem" % pid


def task_file(pid: int, tid: int, name: str) -> str:
    return "/proc/%d/task/%d/%s" % (pid, tid, name)


def local_path(pid: int, path: str, start: int = 0, end: int = 0) -> str:
    """A path this process can open for a file mapped in the target (its own root first)."""
    if path.endswith(" (deleted)"):
        path = path[: -len(" (deleted)")]
    candidate = "/proc/%d/root%s" % (pid, path)
    if os.path.exists(candidate):
        return candidate
    if start:
        candidate = "/proc/%d/map_files/%x-%x" % (pid, start, end)
        if os.path.exists(candidate):
            return candidate
    return path


def same_pid_namespace(pid: int) -> bool:
    """Whether ``pid`` lives in our pid namespace (then its tids are ours)."""
    try:
        return os.readlink("/proc/%d/ns/pid" % pid) == os.readlink("/proc/self/ns/pid")
    except OSError:
        return len(ns_tids(pid)) <= 1


def own_umask() -> Optional[int]:
    """This process's umask, without the set-and-restore race of ``os.umask``."""
    try:
        return int(status(os.getpid()).get("Umask", ""), 8)
    except ValueError:
        return None


def parse_syscall(data: bytes) -> Optional[Tuple[int, Tuple[int, ...]]]:
    """``syscall``'s text -> (number, arguments); (-1, ()) for "running"; None when unreadable.

    The kernel writes ``NR ARG1 .. ARG6 SP PC`` for a blocked thread, ``-1 SP PC``
    for one stopped outside a call and ``running`` for one on a CPU.
    """
    fields = data.split()
    if not fields:
        return None
    if fields[0] == b"running":
        return -1, ()
    try:
        number = int(fields[0])
        args = tuple(int(x, 16) for x in fields[1:7]) if number >= 0 else ()
    except ValueError:
        return None
    return (number, args) if number >= 0 else (-1, ())


def kernel_task(pid: int, tid: int) -> Optional[tuple]:
    """(state, syscall number or None, wchan or None) of one thread; None when gone."""
    st = state(pid, tid)
    if st is None:
        return None
    number = None
    data = read_bytes(pid, "syscall", tid)
    first = data.split() if data else []
    if first and first[0].lstrip(b"-").isdigit():
        number = int(first[0])
    wchan = read_bytes(pid, "wchan", tid)
    text = wchan.decode("utf-8", "replace").strip() if wchan else ""
    return st, number, (text if text and text != "0" else None)
