"""``ImageProcess``: a target held in memory, and ``RecordingProcess`` that captures one.

Why: the engine must give the same snapshot from any source of bytes.  A
test records a real target once through ``RecordingProcess`` (every
successful read, the maps, mapped files, threads, system-call states and
registers seen while paused), kills it, and replays the capture offline from
the ``ImageProcess`` it built; unit tests build small images by hand.  An
image is also what a snapshot file will carry (``to_dict``/``from_dict``).
"""
from __future__ import annotations

import base64
import bisect
import os
from contextlib import contextmanager

from ..errors import BinaryReadError, MemoryReadError
from .base import FILES, REGISTERS, RUNNING_SYSCALLS, MappedFile, MemoryMap, OSThread, Registers, syscalls_of
from .ptrace import RegistersUnavailableError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import BinaryIO, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple


FORMAT = 1


def merge_segments(pieces: Iterable[Tuple[int, bytes]]) -> List[Tuple[int, bytes]]:
    """Overlapping or touching ``(address, bytes)`` pieces as disjoint segments; later pieces win."""
    segments: List[Tuple[int, bytearray]] = []
    for address, data in sorted(((a, d) for a, d in pieces if d), key=lambda p: p[0]):
        if segments and address <= segments[-1][0] + len(segments[-1][1]):
            base, buf = segments[-1]
            end = address + len(data)
            if end > base + len(buf):
                buf.extend(b"\0" * (end - base - len(buf)))
            buf[address - base:end - base] = data
        else:
            segments.append((address, bytearray(data)))
    return [(a, bytes(b)) for a, b in segments]


class ImageProcess:
    """Bytes, maps, threads and (optionally) registers held in memory.  Reads never change."""

    def __init__(self, regions, pid: int = 0, maps: Optional[List[MemoryMap]] = None,
                 files: Sequence[MappedFile] = (), threads: Sequence[OSThread] = (),
                 registers: Optional[Dict[int, Registers]] = None, executable: str = "",
                 command_line: Sequence[str] = (), name: str = "?",
                 in_syscall: Optional[Dict[int, bool]] = None, thread_names: Optional[Dict[int, str]] = None,
                 tid_map: Optional[Dict[int, int]] = None, stopped: Sequence[int] = ()):
        pieces = regions.items() if isinstance(regions, dict) else regions
        self._segments = merge_segments(pieces)
        self._starts = [a for a, _ in self._segments]
        self.pid = pid
        self._maps = list(maps) if maps is not None else [
            MemoryMap(a, a + len(d), "r--p", 0, "") for a, d in self._segments]
        self._files = list(files)
        self._threads = list(threads)
        self._registers = dict(registers or {})
        self._executable = executable
        self._command_line = list(command_line)
        self._name = name
        self._in_syscall = dict(in_syscall or {})
        self._thread_names = dict(thread_names or {})
        self._tid_map = dict(tid_map or {})
        self._stopped = list(stopped)
        self.capabilities: FrozenSet[str] = frozenset(
            ({REGISTERS} if self._registers else set()) | ({FILES} if self._files else set()))
        self.read_calls = 0

    # -- memory ---------------------------------------------------------------
    def read(self, address: int, size: int) -> bytes:
        self.read_calls += 1
        if size == 0 and address > 0:
            return b""  # as a live read of nothing
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and size >= 0:
            base, data = self._segments[i]
            if address + size <= base + len(data):
                return data[address - base:address - base + size]
        raise MemoryReadError(address, size, "not in the image")

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        out: List[Optional[bytes]] = []
        for address, size in requests:
            try:
                out.append(self.read(address, size) if size > 0 and address > 0 else None)
            except MemoryReadError:
                out.append(None)
        return out

    @property
    def segments(self) -> List[Tuple[int, bytes]]:
        return list(self._segments)

    # -- address space ----------------------------------------------------------
    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        return list(self._maps)

    def mapped_files(self, only: Optional[Callable[[str], bool]] = None) -> List[MappedFile]:
        return [f for f in self._files if only is None or only(f.path)]

    def open_file(self, path: str) -> BinaryIO:
        local = next((f.local_path for f in self._files if f.path == path), path)
        try:
            return open(local, "rb")
        except OSError as e:
            raise BinaryReadError("cannot open %s: %s" % (path, e.strerror or e)) from None

    # -- identity -----------------------------------------------------------------
    def executable(self) -> str:
        return self._executable

    def command_line(self) -> List[str]:
        return list(self._command_line)

    def name(self) -> str:
        return self._name

    def is_alive(self) -> bool:
        return True

    # -- threads ------------------------------------------------------------------------
    def threads(self) -> List[OSThread]:
        return list(self._threads)

    def thread_ids(self) -> List[int]:
        return [t.tid for t in self._threads]

    def thread_name(self, tid: int) -> Optional[str]:
        return self._thread_names.get(tid)

    def tid_map(self) -> Dict[int, int]:
        return dict(self._tid_map)

    def registers(self, tid: int) -> Registers:
        try:
            return self._registers[tid]
        except KeyError:
            raise RegistersUnavailableError("the image holds no registers for thread %d" % tid) from None

    def in_syscall(self, tids: Sequence[int]) -> Dict[int, bool]:
        return {t: self._in_syscall[t] for t in tids if t in self._in_syscall}

    @contextmanager
    def paused(self) -> Iterator[List[int]]:
        """Nothing to stop: yields the threads that were stopped when the image was taken."""
        yield list(self._stopped)

    def close(self) -> None:
        pass

    # -- saving ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "pid": self.pid, "executable": self._executable,
            "command_line": self._command_line, "name": self._name,
            "segments": [[a, base64.b64encode(d).decode()] for a, d in self._segments],
            "maps": [[m.start, m.end, m.perms, m.offset, m.path] for m in self._maps],
            "files": [[f.path, f.start, f.end, f.load_bias, f.build_id, f.local_path] for f in self._files],
            "threads": [[t.tid, t.state] for t in self._threads],
            "registers": {str(t): [r.arch, list(r.dwarf), r.fs_base, r.orig_rax]
                          for t, r in self._registers.items()},
            "in_syscall": {str(t): v for t, v in self._in_syscall.items()},
            "thread_names": {str(t): v for t, v in self._thread_names.items()},
            "tid_map": {str(t): v for t, v in self._tid_map.items()},
            "stopped": self._stopped,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ImageProcess":
        if data.get("format") != FORMAT:
            raise ValueError("unknown image format %r" % data.get("format"))
        return cls([(a, base64.b64decode(d)) for a, d in data["segments"]], pid=data["pid"],
                   maps=[MemoryMap(*m) for m in data["maps"]], files=[MappedFile(*f) for f in data["files"]],
                   threads=[OSThread(*t) for t in data["threads"]],
                   registers={int(t): Registers(r[0], tuple(r[1]), r[2], r[3])
                              for t, r in data["registers"].items()},
                   executable=data["executable"], command_line=data["command_line"], name=data["name"],
                   in_syscall={int(t): v for t, v in data["in_syscall"].items()},
                   thread_names={int(t): v for t, v in data["thread_names"].items()},
                   tid_map={int(t): v for t, v in data["tid_map"].items()}, stopped=data["stopped"])


class RecordingProcess:
    """Wraps another ``Process`` and remembers what it answered, to build an ``ImageProcess``."""

    def __init__(self, inner):
        self.inner = inner
        self.pid = inner.pid
        # not RUNNING_SYSCALLS: the image needs the thread list, which only ``threads()`` records
        self.capabilities = inner.capabilities - {RUNNING_SYSCALLS}
        self._pieces: List[Tuple[int, bytes]] = []
        self._registers: Dict[int, Registers] = {}
        self._in_syscall: Dict[int, bool] = {}
        self._names: Dict[int, str] = {}
        self._threads: List[OSThread] = []
        self._stopped: List[int] = []
        self._tid_map: Dict[int, int] = {}

    def read(self, address: int, size: int) -> bytes:
        data = self.inner.read(address, size)
        self._pieces.append((address, data))
        return data

    def read_many(self, requests: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        results = self.inner.read_many(requests)
        self._pieces.extend((a, d) for (a, _), d in zip(requests, results) if d)
        return results

    def maps(self, refresh: bool = False) -> List[MemoryMap]:
        return self.inner.maps()

    def mapped_files(self, only: Optional[Callable[[str], bool]] = None) -> List[MappedFile]:
        return self.inner.mapped_files(only)

    def open_file(self, path: str) -> BinaryIO:
        return self.inner.open_file(path)

    def executable(self) -> str:
        return self.inner.executable()

    def command_line(self) -> List[str]:
        return self.inner.command_line()

    def name(self) -> str:
        return self.inner.name()

    def is_alive(self) -> bool:
        return self.inner.is_alive()

    def threads(self) -> List[OSThread]:
        self._threads = self.inner.threads()
        return list(self._threads)

    def thread_ids(self) -> List[int]:
        get = getattr(self.inner, "thread_ids", None)
        tids = get() if get is not None else [t.tid for t in self.inner.threads()]
        if not self._threads or {t.tid for t in self._threads} != set(tids):
            self._threads = [OSThread(t) for t in tids]
        return list(tids)

    def thread_name(self, tid: int) -> Optional[str]:
        name = self.inner.thread_name(tid)
        if name is not None:
            self._names[tid] = name
        return name

    def tid_map(self) -> Dict[int, int]:
        get = getattr(self.inner, "tid_map", None)
        self._tid_map = get() if get else {}
        return dict(self._tid_map)

    def registers(self, tid: int) -> Registers:
        regs = self.inner.registers(tid)
        self._registers[tid] = regs
        return regs

    def in_syscall(self, tids: Sequence[int]) -> Dict[int, bool]:
        result = self.inner.in_syscall(tids)
        self._in_syscall.update(result)
        return result

    def syscalls(self, tids: Sequence[int]) -> Dict[int, Tuple[int, Tuple[int, ...]]]:
        """The inner source's answer; the image keeps whether each was in a call (and registers)."""
        result = syscalls_of(self.inner, tids)
        self._in_syscall.update((tid, nr >= 0) for tid, (nr, _) in result.items())
        return result

    @contextmanager
    def paused(self) -> Iterator[List[int]]:
        with self.inner.paused() as stopped:
            self._stopped = list(stopped)
            for tid in stopped:  # registers are only to be had now
                try:
                    self._registers[tid] = self.inner.registers(tid)
                except Exception:  # noqa: BLE001 - a source without registers records none
                    pass
            yield stopped

    def close(self) -> None:
        self.inner.close()

    def image(self) -> ImageProcess:
        """What was seen so far, as an offline ``ImageProcess``.

        Mapped files keep the target's own paths where those exist here (a
        path through a live process's ``root`` dies with the process).
        """
        inner = self.inner
        threads = self._threads or [OSThread(t) for t in self._stopped]
        files = [f if not os.path.exists(f.path) else MappedFile(f.path, f.start, f.end, f.load_bias,
                                                                  f.build_id, f.path)
                 for f in inner.mapped_files()]
        return ImageProcess(self._pieces, pid=self.pid, maps=inner.maps(), files=files,
                            threads=threads, registers=self._registers, executable=inner.executable(),
                            command_line=inner.command_line(), name=inner.name(),
                            in_syscall=self._in_syscall, thread_names=self._names, tid_map=self._tid_map,
                            stopped=self._stopped)
