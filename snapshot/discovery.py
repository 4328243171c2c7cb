"""Finding the interpreter in a process: which file, where it is loaded, which version.

Order of evidence: the ``_PyRuntime`` symbol (exported even by stripped
builds), else the ``.PyRuntime`` section (3.10+), else for 3.13+ a scan of
writable mappings for the ``xdebugpy`` cookie.  Version: the debug-offsets
word (3.13+), ``Py_Version`` (3.11+), ``PY_VERSION`` text in ``.rodata``,
and last the file name.  Binaries are opened through ``/proc/PID/root`` so a
process in a container is read with its own files.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from layouts import COOKIE, SUPPORTED_VERSIONS

from . import binary
from .errors import (InterpreterNotFoundError, NotPythonError, PermissionDeniedError, ProcessExitedError,
                     UnsupportedVersionError)
from .memory import MemoryMap, MemoryReader

_LIBPYTHON = re.compile(r"libpython(\d)\.(\d+)[a-z]*\.so")
_PYTHON_NAME = re.compile(r"python(\d)\.(\d+)")


@dataclass(frozen=True)
class Interpreter:
    """Where a process's interpreter is, and what version it runs."""

    pid: int
    executable: str
    binary_path: str
    load_base: int
    runtime_addr: int
    version: Tuple[int, int, int]
    version_text: str
    build_id: str
    symbols: Tuple[Tuple[str, int], ...] = ()  # absolute addresses of useful symbols

    def symbol(self, name: str) -> Optional[int]:
        return dict(self.symbols).get(name)


def process_name(pid: int) -> str:
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def command_line(pid: int) -> List[str]:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def executable_of(pid: int) -> str:
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except FileNotFoundError:
        raise ProcessExitedError("process %d exited" % pid) from None
    except PermissionError:
        raise PermissionDeniedError("not allowed to inspect process %d" % pid) from None
    except OSError:
        return ""


def _local_path(pid: int, mapping: MemoryMap) -> str:
    """A path this process can open for a file mapped in the target."""
    path = mapping.path
    if path.endswith(" (deleted)"):
        path = path[: -len(" (deleted)")]
    candidate = "/proc/%d/root%s" % (pid, path)
    if os.path.exists(candidate):
        return candidate
    candidate = "/proc/%d/map_files/%x-%x" % (pid, mapping.start, mapping.end)
    if os.path.exists(candidate):
        return candidate
    return path


def _candidates(maps: List[MemoryMap], exe: str) -> List[MemoryMap]:
    """First mapping (file offset 0) of libpython and of the executable, libpython first."""
    first = {}
    for m in maps:
        if m.path and m.path.startswith("/") and m.path not in first:
            first[m.path] = m
    libs = [m for p, m in first.items() if _LIBPYTHON.search(os.path.basename(p))]
    exes = [m for p, m in first.items() if p == exe or p == exe + " (deleted)"]
    return libs + [m for m in exes if m not in libs]


def _version_from_name(path: str) -> Optional[Tuple[int, int]]:
    name = os.path.basename(path)
    match = _LIBPYTHON.search(name) or _PYTHON_NAME.search(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _decode_hex(value: int) -> Tuple[Tuple[int, int, int], str]:
    major, minor, micro = value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF
    level, serial = (value >> 4) & 0xF, value & 0xF
    suffix = {0xA: "a%d" % serial, 0xB: "b%d" % serial, 0xC: "rc%d" % serial}.get(level, "")
    return (major, minor, micro), "%d.%d.%d%s" % (major, minor, micro, suffix)


def locate(pid: int, memory: MemoryReader) -> Interpreter:
    """Find the interpreter of ``pid`` or raise a clear error saying why not."""
    exe = executable_of(pid)
    maps = memory.maps()
    candidates = _candidates(maps, exe)
    seen_old_python = None
    for mapping in candidates:
        try:
            info = binary.load(_local_path(pid, mapping))
        except ValueError:
            continue
        base = 0 if info.elf_type == "ET_EXEC" else mapping.start - mapping.offset - info.first_load_vaddr
        runtime = info.symbols.get("_PyRuntime") or info.pyruntime_section
        if not runtime:
            if "interp_head" in info.symbols:
                seen_old_python = _version_from_name(mapping.path) or (2, 7)
            continue
        runtime_addr = base + runtime
        version, text = _detect_version(memory, info, runtime_addr, mapping.path)
        if version[:2] not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionError("Python %s is not supported (process %d, %s)" % (text, pid, process_name(pid)))
        symbols = tuple((k, base + v) for k, v in info.symbols.items())
        return Interpreter(pid, exe, mapping.path, base, runtime_addr, version, text, info.build_id, symbols)
    if seen_old_python:
        raise UnsupportedVersionError("Python %d.%d is not supported (process %d, %s)"
                                      % (seen_old_python + (pid, process_name(pid))))
    cookie = _scan_for_cookie(memory, maps)
    if cookie is not None:
        version, text = cookie[1]
        if version[:2] not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionError("Python %s is not supported" % text)
        return Interpreter(pid, exe, exe, 0, cookie[0], version, text, "")
    name = process_name(pid)
    if "python" in os.path.basename(exe) or "python" in name:
        raise InterpreterNotFoundError("no CPython runtime found in process %d (%s, %s)" % (pid, name, exe))
    raise NotPythonError("process %d is not a Python process: it runs %s (%s)" % (pid, name, exe or "?"))


def _detect_version(memory: MemoryReader, info: binary.BinaryInfo, runtime_addr: int,
                    path: str) -> Tuple[Tuple[int, int, int], str]:
    head = None
    try:
        head = memory.read(runtime_addr, 16)
    except Exception:
        pass
    if head is not None and head[:8] == COOKIE:
        return _decode_hex(struct.unpack_from("<Q", head, 8)[0])
    if info.py_version_hex:
        return _decode_hex(info.py_version_hex)
    if info.version_text:
        parts = re.match(r"(\d+)\.(\d+)\.(\d+)", info.version_text)
        if parts:
            return (int(parts.group(1)), int(parts.group(2)), int(parts.group(3))), info.version_text
    by_name = _version_from_name(path)
    if by_name:
        return (by_name[0], by_name[1], 0), "%d.%d" % by_name
    raise InterpreterNotFoundError("found a CPython runtime in %s but could not tell its version" % path)


def _scan_for_cookie(memory: MemoryReader, maps: List[MemoryMap]):
    """3.13+ without symbols or section: the debug table in a writable file mapping."""
    for m in maps:
        if "w" not in m.perms or not m.path.startswith("/") or m.size > (64 << 20):
            continue
        try:
            data = memory.read(m.start, m.size)
        except Exception:
            continue
        index = data.find(COOKIE)
        while index >= 0:
            if index + 16 <= len(data):
                value = struct.unpack_from("<Q", data, index + 8)[0]
                if value >> 24 == 3 and 13 <= (value >> 16) & 0xFF < 40:
                    return m.start + index, _decode_hex(value)
            index = data.find(COOKIE, index + 1)
    return None
