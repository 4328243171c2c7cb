"""Facts about the ELF file that holds the interpreter, cached by build-id.

Opening a 20 MB libpython with pyelftools and scanning its symbols costs a
noticeable fraction of a second, and on-call engineers attach repeatedly; so
what we learn about a binary (symbol offsets, section addresses, version) is
stored under ``$XDG_CACHE_HOME/pyspy-repl/binaries/BUILDID.json`` and the
second attach reads only that.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from .errors import BinaryReadError

SYMBOLS = ("_PyRuntime", "Py_Version", "PyCode_Type", "_Py_NoneStruct", "interp_head",
           # 2.7/3.6: the GIL holder, the accessor that gives interp_head on stripped builds,
           # and a narrow (UCS2) unicode build's exported names.
           "_PyThreadState_Current", "PyInterpreterState_Head", "PyUnicodeUCS2_FromString",
           # 2.7/3.6: the GC's ``collecting`` flag (a gcmodule.c static: .symtab only) and
           # where GIL waiters sleep (2.7: the lock ``interpreter_lock`` points to; 3.6: ceval_gil.h)
           "collecting", "interpreter_lock", "switch_mutex", "switch_cond", "gil_mutex", "gil_cond")
CACHE_FORMAT = 5
# PY_VERSION may be tail-merged into a longer string (".../versions/3.8.18"), so
# only require that no digit or dot precedes it.
_VERSION_TEXT = re.compile(rb"(?<![\d.])([23]\.\d{1,2}\.\d{1,2})((?:a|b|rc)\d{1,2})?\+?\x00")
#: pyelftools' names of e_type, which discovery compares with.
_ELF_TYPES = {1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}


@dataclass
class BinaryInfo:
    """What one ELF file tells us, with addresses relative to its load base."""

    path: str
    build_id: str
    elf_type: str
    symbols: Dict[str, int] = field(default_factory=dict)
    pyruntime_section: Optional[int] = None
    py_version_hex: Optional[int] = None  # from Py_Version's initial value in the file
    version_text: Optional[str] = None   # PY_VERSION found in .rodata (e.g. "3.8.18")
    format: int = CACHE_FORMAT


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyspy-repl", "binaries")


def _read_symbols(elf, wanted) -> Dict[str, int]:
    found: Dict[str, int] = {}
    for name in (".dynsym", ".symtab"):
        section = elf.get_section_by_name(name)
        if section is None:
            continue
        missing = [w for w in wanted if w not in found]
        if not missing:
            break
        # get_symbol_by_name builds a name index once: faster than iterating in Python.
        for symbol_name in missing:
            symbols = section.get_symbol_by_name(symbol_name)
            if symbols:
                value = symbols[0]["st_value"]
                if value:
                    found[symbol_name] = value
    return found


def _interp_head_from_accessor(image, function_vaddr: int) -> Optional[int]:
    """A stripped 2.7/3.6: ``interp_head`` is what ``PyInterpreterState_Head`` loads."""
    from .accessor import rip_load_target
    code = image.read_vaddr(function_vaddr, 32)
    return rip_load_target(code, function_vaddr) if code else None


def analyse(path: str) -> BinaryInfo:
    """Read what we need from an ELF file (slow path; see ``load``)."""
    # pyelftools is imported only here: a cached binary never needs it.
    from elftools.common.exceptions import ELFError

    from .elf import ElfFormatError

    try:
        return _analyse(path)
    except BinaryReadError:
        raise
    except ElfFormatError as e:
        raise BinaryReadError(e.message) from None
    except ELFError as e:
        raise BinaryReadError("%s is not a usable ELF file: %s" % (path, e)) from None
    except OSError as e:
        raise BinaryReadError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except Exception as e:  # noqa: BLE001 - construct/struct errors of a truncated or odd file
        raise BinaryReadError("cannot parse %s: %s: %s" % (path, type(e).__name__, e)) from None


def _analyse(path: str) -> BinaryInfo:
    from elftools.elf.elffile import ELFFile

    from .elf import ElfFile

    image = ElfFile(path)   # headers, sections and file bytes by address, without pyelftools
    try:
        info = BinaryInfo(path=path, build_id=image.build_id(), elf_type=_ELF_TYPES.get(image.type, "ET_NONE"))
        with open(path, "rb") as f:
            info.symbols = _read_symbols(ELFFile(f), SYMBOLS)
        section = image.sections.get(".PyRuntime")
        if section is not None:
            info.pyruntime_section = section.addr
        if "interp_head" not in info.symbols and "PyInterpreterState_Head" in info.symbols \
                and "_PyRuntime" not in info.symbols:
            recovered = _interp_head_from_accessor(image, info.symbols["PyInterpreterState_Head"])
            if recovered:
                info.symbols["interp_head"] = recovered
        if "Py_Version" in info.symbols:
            raw = image.read_vaddr(info.symbols["Py_Version"], 8)
            if raw and len(raw) >= 4:
                info.py_version_hex = int.from_bytes(raw[:4], "little")
        rodata = image.section_bytes(".rodata") if info.py_version_hex is None else None
        if rodata:
            match = _VERSION_TEXT.search(rodata)
            if match:
                info.version_text = match.group(1).decode() + (match.group(2) or b"").decode()
    finally:
        image.close()
    return info


def load(path: str, use_cache: bool = True) -> BinaryInfo:
    """``analyse`` with a cache keyed by build-id (falls back to path+size+mtime)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise BinaryReadError("cannot open %s: %s" % (path, e.strerror)) from None
    key = None
    if use_cache:
        key = _cache_key(path, st)
        cached = _read_cache(key)
        if cached is not None:
            cached.path = path
            return cached
    info = analyse(path)
    if use_cache:
        _write_cache(_cache_key(path, st, info.build_id), info)
        if key is not None and key != _cache_key(path, st, info.build_id):
            _write_cache(key, info)
    return info


def _cache_key(path: str, st: os.stat_result, build_id: str = "") -> str:
    if not build_id:
        build_id = _quick_build_id(path)
    if build_id:
        return build_id
    return "nobuildid-%x-%x-%x" % (st.st_ino, st.st_size, int(st.st_mtime))


def _quick_build_id(path: str) -> str:
    """The GNU build-id without pyelftools (the cache key, read on every attach)."""
    from .elf import file_build_id
    return file_build_id(path)


#: Cache trouble not yet told to the user (the engine never prints; front ends call ``cache_warnings``).
_WARNINGS: List[str] = []
_WARNED = set()


def _warn_once(kind: str, text: str) -> None:
    if kind not in _WARNED:
        _WARNED.add(kind)
        _WARNINGS.append(text)


def cache_warnings() -> List[str]:
    """Cache problems met since the last call (each kind once per run): an unwritable cache
    folder makes every attach parse the binaries again, which the user should know."""
    out = list(_WARNINGS)
    del _WARNINGS[:]
    return out


def _checksum(data: dict) -> str:
    body = json.dumps({k: v for k, v in data.items() if k != "checksum"}, sort_keys=True)
    return hashlib.sha1(body.encode()).hexdigest()


def _cache_path(key: str) -> str:
    """An entry's file, named by the cache format too: tool versions that share a cache (an
    upgrade, two checkouts) never read each other's entries, whose fields may differ (the
    fields are what ``BinaryInfo`` declares; a bump of ``CACHE_FORMAT`` names new files)."""
    return os.path.join(cache_dir(), "%s.v%d.json" % (key, CACHE_FORMAT))


def _read_cache(key: str) -> Optional[BinaryInfo]:
    path = _cache_path(key)
    try:
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return None
        if "checksum" not in data:
            return None     # written before entries carried one: rewritten, nothing to warn about
        if data.pop("checksum") != _checksum(data):
            raise ValueError("checksum mismatch")
        return BinaryInfo(**data)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None     # the folder is not one: the write that follows says so
    except OSError as e:
        _warn_once("read", "cannot read the binary cache %s: %s" % (path, e.strerror or e))
        return None
    except (ValueError, TypeError, AttributeError):
        # a damaged entry: discard it, so the next attach does not meet it again
        try:
            os.unlink(path)
        except OSError:
            pass
        _warn_once("corrupt", "discarded a damaged entry of the binary cache (%s)" % path)
        return None


def _write_cache(key: str, info: BinaryInfo) -> None:
    tmp = None
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        tmp = os.path.join(cache_dir(), ".%s.%d.tmp" % (key, os.getpid()))
        data = asdict(info)
        data["checksum"] = _checksum(data)
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, _cache_path(key))
    except OSError as e:
        # a cache we cannot write only costs time, but every attach pays it: say so once
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        _warn_once("write", "cannot write the binary cache in %s (%s): every attach parses the "
                            "interpreter's binary again; set XDG_CACHE_HOME to a writable folder"
                            % (cache_dir(), e.strerror or e))
