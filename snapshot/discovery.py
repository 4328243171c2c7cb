"""Finding the interpreter in a process: which file, where it is loaded, which version.

Order of evidence: the ``_PyRuntime`` symbol (exported even by stripped
builds), else the ``.PyRuntime`` section (3.10+), else for 3.13+ a scan of
writable mappings for the ``xdebugpy`` cookie.  2.7 and 3.6 have no
``_PyRuntime``: their root is the static ``interp_head`` (from ``.symtab``, or
recovered from the exported ``PyInterpreterState_Head`` on stripped builds,
see ``binary``), and ``Interpreter.runtime_addr`` is then its address.  Version: the debug-offsets
word (3.13+), ``Py_Version`` (3.11+), ``PY_VERSION`` text in ``.rodata``,
and last the file name.  Everything comes from a ``Process``: its mapped files
(opened as the target sees them, e.g. a container's own root) and its memory.
"""
from __future__ import annotations

import os
import struct
from layouts.records import dataclass

from layouts import COOKIE, SUPPORTED_VERSIONS, decode_hexversion, is_debug_offsets_version

from . import binary
from .errors import InterpreterNotFoundError, NotPythonError, SnapshotError, UnsupportedVersionError
from .process.base import LIVE, MappedFile, MemoryMap, Process

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, Tuple


#: Ways of finding ``_PyRuntime``, in the order tried: the exported symbol, the
#: ``.PyRuntime`` section (3.10+), the 3.13+ debug-offsets cookie in writable memory.
METHODS = ("symbol", "section", "cookie")


@dataclass(frozen=True)
class Interpreter:
    """Where a process's interpreter is, and what version it runs."""

    executable: str
    binary_path: str
    load_base: int
    #: ``_PyRuntime``; before 3.7 the address of the ``interp_head`` static (the layout's
    #: ``facts.interpreter_list`` says which).
    runtime_addr: int
    version: Tuple[int, int, int]
    version_text: str
    build_id: str
    symbols: Tuple[Tuple[str, int], ...] = ()  # absolute addresses of useful symbols

    def symbol(self, name: str) -> Optional[int]:
        return dict(self.symbols).get(name)


def _is_libpython(path: str) -> bool:
    return bool(_libpython_version(os.path.basename(path)))


def _is_executable(path: str, exe: str) -> bool:
    return path == exe or path == exe + " (deleted)"


def _candidates(files: List[MappedFile], exe: str) -> List[MappedFile]:
    """libpython and the executable among the mapped files, libpython first."""
    libs = [f for f in files if _is_libpython(f.path)]
    exes = [f for f in files if _is_executable(f.path, exe) and f not in libs]
    return libs + exes


def candidate_files(process: Process) -> List[MappedFile]:
    """The files the interpreter can be in (``_candidates``), only those identified."""
    exe = process.executable()
    return _candidates(process.mapped_files(only=lambda path: _is_libpython(path) or _is_executable(path, exe)),
                       exe)


def _binary_info(process: Process, mapped: MappedFile) -> binary.BinaryInfo:
    """The file's facts: from the source when it carries them (a snapshot file opened
    without the binaries, ``binary_info``), else read from the file itself."""
    known = getattr(process, "binary_info", None)
    if known is not None:
        info = known(mapped)
        if info is not None:
            return info
    # A live process read the build-id from this same file a moment ago; a core's or a
    # debugger's is what they recorded, which the file here may not match: read it again.
    return binary.load(mapped.local_path, build_id=mapped.build_id if LIVE in process.capabilities else "")


def _libpython_version(name: str) -> Optional[Tuple[int, int]]:
    """(major, minor) of a file named like ``libpython3.12.so.1.0`` or ``libpython3.8d.so``
    (``libpython<digit>.<digits>[a-z]*.so`` anywhere in the name), else None.  Scanned by
    hand: this runs on every attach, and ``re`` is not otherwise imported by a dump."""
    start = name.find("libpython")
    while start >= 0:
        i = start + len("libpython")
        if i + 2 < len(name) and "0" <= name[i] <= "9" and name[i + 1] == ".":
            j = i + 2
            while j < len(name) and "0" <= name[j] <= "9":
                j += 1
            k = j
            while k < len(name) and "a" <= name[k] <= "z":
                k += 1
            if j > i + 2 and name.startswith(".so", k):
                return int(name[i]), int(name[i + 2:j])
        start = name.find("libpython", start + 1)
    return None


def _version_from_name(path: str) -> Optional[Tuple[int, int]]:
    name = os.path.basename(path)
    found = _libpython_version(name)
    if found:
        return found
    import re       # the last resort of version finding, after the binary's own facts
    match = re.search(r"python(\d)\.(\d+)", name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def root_offset(info: binary.BinaryInfo, method: Optional[str] = None) -> Optional[int]:
    """The file offset of the interpreter's root in ``info``: ``_PyRuntime`` by ``method``
    (symbol, section or either), else (2.7/3.6) the ``interp_head`` static."""
    if method is None:
        runtime = info.symbols.get("_PyRuntime") or info.pyruntime_section
    elif method == "symbol":
        runtime = info.symbols.get("_PyRuntime")
    else:
        runtime = info.pyruntime_section
    if not runtime and method in (None, "symbol") and "_PyRuntime" not in info.symbols:
        runtime = info.symbols.get("interp_head")
    return runtime or None


def locate(process: Process, method: Optional[str] = None) -> Interpreter:
    """Find the interpreter of ``process`` or raise a clear error saying why not.

    ``method`` forces one way of finding ``_PyRuntime`` (one of ``METHODS``);
    by default each is tried in that order.
    """
    if method is not None and method not in METHODS:
        raise ValueError("unknown discovery method %r (one of %s)" % (method, ", ".join(METHODS)))
    pid = process.pid
    exe = process.executable()
    if method != "cookie":
        for mapped in candidate_files(process):
            if not mapped.local_path:
                # The source knows why it has no file here (a core's binary missing or rebuilt): say so.
                process.open_file(mapped.path).close()
            try:
                info = _binary_info(process, mapped)
            except ValueError:
                continue
            base = 0 if info.elf_type == "ET_EXEC" else mapped.load_bias
            runtime = root_offset(info, method)
            if not runtime:
                continue
            runtime_addr = base + runtime
            version, text = _detect_version(process, info, runtime_addr, mapped.path)
            if version[:2] not in SUPPORTED_VERSIONS:
                raise UnsupportedVersionError("Python %s is not supported (process %d, %s)"
                                              % (text, pid, process.name()))
            symbols = tuple((k, base + v) for k, v in info.symbols.items())
            return Interpreter(exe, mapped.path, base, runtime_addr, version, text, info.build_id, symbols)
    if method in (None, "cookie"):
        cookie = _scan_for_cookie(process, process.maps())
        if cookie is not None:
            version, text = cookie[1]
            if version[:2] not in SUPPORTED_VERSIONS:
                raise UnsupportedVersionError("Python %s is not supported" % text)
            return Interpreter(exe, exe, 0, cookie[0], version, text, "")
    name = process.name()
    if method is not None:
        raise InterpreterNotFoundError("no CPython runtime found in process %d by the %s method" % (pid, method))
    recorded = LIVE not in process.capabilities  # a core or a debugger's inferior: "try again" is no help
    if "python" in os.path.basename(exe) or "python" in name:
        raise InterpreterNotFoundError("no CPython runtime found in process %d (%s, %s)" % (pid, name, exe),
                                       "it was recorded while the interpreter was starting or finalizing"
                                       if recorded else None)
    raise NotPythonError("process %d is not a Python process: it runs %s (%s)" % (pid, name, exe or "?"),
                         "the recorded program is not CPython (3.8 to 3.15)" if recorded else None)


def _detect_version(memory: Process, info: binary.BinaryInfo, runtime_addr: int,
                    path: str) -> Tuple[Tuple[int, int, int], str]:
    head = None
    try:
        head = memory.read(runtime_addr, 16)
    except SnapshotError:
        pass
    if head is not None and head[:8] == COOKIE:
        return decode_hexversion(struct.unpack_from("<Q", head, 8)[0])
    if info.py_version_hex:
        return decode_hexversion(info.py_version_hex)
    if info.version_text:
        import re   # a stripped binary without a version number (rare): its PY_VERSION text
        parts = re.match(r"(\d+)\.(\d+)\.(\d+)", info.version_text)
        if parts:
            return (int(parts.group(1)), int(parts.group(2)), int(parts.group(3))), info.version_text
    by_name = _version_from_name(path)
    if by_name:
        return (by_name[0], by_name[1], 0), "%d.%d" % by_name
    raise InterpreterNotFoundError("found a CPython runtime in %s but could not tell its version" % path)


def _scan_for_cookie(memory: Process, maps: List[MemoryMap]):
    """3.13+ without symbols or section: the debug table in a writable file mapping."""
    for m in maps:
        if "w" not in m.perms or not m.path.startswith("/") or m.size > (64 << 20):
            continue
        try:
            data = memory.read(m.start, m.size)
        except SnapshotError:
            continue
        index = data.find(COOKIE)
        while index >= 0:
            if index + 16 <= len(data):
                value = struct.unpack_from("<Q", data, index + 8)[0]
                if is_debug_offsets_version(value):
                    return m.start + index, decode_hexversion(value)
            index = data.find(COOKIE, index + 1)
    return None
