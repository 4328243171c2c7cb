"""Facts about the ELF file that holds the interpreter, cached by build-id.

Even read with ``struct`` (a few milliseconds), a 20 MB libpython is worth not
reading again, and on-call engineers attach repeatedly; so
what we learn about a binary (symbol offsets, section addresses, version) is
stored under ``$XDG_CACHE_HOME/pyspy-repl/binaries/BUILDID.vN.marshal`` and the
second attach reads only that (``marshal``: built in, where ``json`` cost its import on
every one-shot dump).
"""
from __future__ import annotations

import marshal
import os
import struct
from layouts.records import asdict, dataclass, field

from .errors import BinaryReadError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional


SYMBOLS = ("_PyRuntime", "Py_Version", "PyCode_Type", "_Py_NoneStruct", "interp_head",
           # 2.7/3.6: the GIL holder, the accessor that gives interp_head on stripped builds,
           # and a narrow (UCS2) unicode build's exported names.
           "_PyThreadState_Current", "PyInterpreterState_Head", "PyUnicodeUCS2_FromString",
           # 2.7/3.6: the GC's ``collecting`` flag (a gcmodule.c static: .symtab only) and
           # where GIL waiters sleep (2.7: the lock ``interpreter_lock`` points to; 3.6: ceval_gil.h)
           "collecting", "interpreter_lock", "switch_mutex", "switch_cond", "gil_mutex", "gil_cond")
#: 5: 2.7/3.6 GC and GIL symbols; a checksum (hashlib cost ~3 ms of every warm attach).
#: 7: marshal, not JSON.  8: the checksum is ``stable_hash``, not zlib's CRC-32.
CACHE_FORMAT = 8
# PY_VERSION may be tail-merged into a longer string (".../versions/3.8.18"), so
# only require that no digit or dot precedes it.
_VERSION_TEXT = rb"(?<![\d.])([23]\.\d{1,2}\.\d{1,2})((?:a|b|rc)\d{1,2})?\+?\x00"
#: pyelftools' names of e_type, which discovery compares with.
_ELF_TYPES = {1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_SYM_SIZE = 24          # Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SHT_NOBITS = 8


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


def _find_symbols(elf, wanted) -> Dict[str, int]:
    """The values of the ``wanted`` names, from ``.dynsym`` then ``.symtab``.

    Why not a name index: libpython has ~17,000 symbols and we want about ten, so
    each name is found in the string table first (``bytes.find``) and only the
    ``st_name`` column of the table is compared, not every entry decoded.  As
    before, the first entry of a table with the name decides (an undefined one,
    value 0, leaves the name to the next table)."""
    found: Dict[str, int] = {}
    for name in (".dynsym", ".symtab"):
        missing = [w for w in wanted if w not in found]
        if not missing:
            break
        found.update(_scan_table(elf, name, missing))
    return found


def _scan_table(elf, name: str, wanted) -> Dict[str, int]:
    sec = elf.sections.get(name)
    if sec is None or sec.type == _SHT_NOBITS or sec.link >= len(elf.section_list):
        return {}
    entsize = sec.entsize or _SYM_SIZE
    if entsize < _SYM_SIZE:
        return {}
    strsec = elf.section_list[sec.link]
    strings = elf.data[strsec.offset:strsec.offset + strsec.size]
    if len(strings) != strsec.size:
        raise BinaryReadError("%s: the string table of %s is truncated" % (elf.path, name))
    # Every string-table offset at which each name (or a longer name ending in it) starts.
    offsets: Dict[int, str] = {}
    for symbol in wanted:
        needle = symbol.encode() + b"\0"
        at = strings.find(needle)
        while at >= 0:
            offsets[at] = symbol
            at = strings.find(needle, at + 1)
    if not offsets:
        return {}
    count = sec.size // entsize
    raw = elf.data[sec.offset:sec.offset + count * entsize]
    if len(raw) != count * entsize:
        raise BinaryReadError("%s: %s is truncated" % (elf.path, name))
    names = memoryview(raw).cast("I")[::entsize // 4] if entsize % 4 == 0 else \
        [_U32.unpack_from(raw, i * entsize)[0] for i in range(count)]
    found: Dict[str, int] = {}
    decided = set()
    for index, st_name in enumerate(names):
        symbol = offsets.get(st_name)
        if symbol is None or symbol in decided:
            continue
        decided.add(symbol)
        value = _U64.unpack_from(raw, index * entsize + 8)[0]
        if value:
            found[symbol] = value
        if len(decided) == len(wanted):
            break
    return found


def _interp_head_from_accessor(image, function_vaddr: int) -> Optional[int]:
    """A stripped 2.7/3.6: ``interp_head`` is what ``PyInterpreterState_Head`` loads."""
    from .accessor import rip_load_target
    code = image.read_vaddr(function_vaddr, 32)
    return rip_load_target(code, function_vaddr) if code else None


def analyse(path: str) -> BinaryInfo:
    """Read what we need from an ELF file (slow path; see ``load``)."""
    from .elf import ElfFormatError

    try:
        return _analyse(path)
    except BinaryReadError:
        raise
    except ElfFormatError as e:
        raise BinaryReadError(e.message) from None
    except OSError as e:
        raise BinaryReadError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except Exception as e:  # noqa: BLE001 - struct/index errors of a truncated or odd file
        raise BinaryReadError("cannot parse %s: %s: %s" % (path, type(e).__name__, e)) from None


def _analyse(path: str) -> BinaryInfo:
    """The facts of one file, with ``struct`` only (no pyelftools: its symbol index of a
    20 MB libpython was most of a cold attach)."""
    from .elf import ElfFile

    image = ElfFile(path)   # headers, sections and file bytes by address, without pyelftools
    try:
        info = BinaryInfo(path=path, build_id=image.build_id(), elf_type=_ELF_TYPES.get(image.type, "ET_NONE"))
        info.symbols = _find_symbols(image, SYMBOLS)
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
            import re       # here: analysis runs once per binary (then cached), not at start-up
            match = re.search(_VERSION_TEXT, rodata)
            if match:
                info.version_text = match.group(1).decode() + (match.group(2) or b"").decode()
    finally:
        image.close()
    return info


def load(path: str, use_cache: bool = True, build_id: str = "") -> BinaryInfo:
    """``analyse`` with a cache keyed by build-id (falls back to path+size+mtime).

    ``build_id``: the file's own, when the caller has just read it from this very file
    (a live process's ``mapped_files``), so it is not read a second time."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise BinaryReadError("cannot open %s: %s" % (path, e.strerror)) from None
    key = None
    if use_cache:
        key = _cache_key(path, st, build_id)
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


#: The largest prime below 2**64: 2 has a huge order modulo it, so no two byte positions of a
#: cache file weigh the same (unlike 2**61 - 1, the modulus of ``hash(int)``).
_DIGEST_PRIME = (1 << 64) - 59


def stable_hash(data: bytes) -> int:
    """A 64-bit digest of ``data`` that every process and Python version computes alike.

    The bytes read as one integer (a final 1 byte makes their length count) modulo a prime:
    a polynomial fingerprint, so one changed byte, or two swapped, always change it.  Why not
    zlib's CRC-32: loading zlib and libz was a millisecond of every start, for checking a file;
    ``hash()`` is salted for bytes.
    """
    return int.from_bytes(data + b"\x01", "little") % _DIGEST_PRIME


def _checksum(data: dict) -> str:
    # Over the repr (dicts keep their order through marshal), not marshal's bytes: those
    # depend on reference counts, so the same data may be written two ways.
    # It guards against a damaged file, not an adversary (the cache folder is the user's own).
    body = repr(sorted((k, v) for k, v in data.items() if k != "checksum"))
    return "%016x" % stable_hash(body.encode())


def _cache_path(key: str) -> str:
    """An entry's file, named by the cache format too: tool versions that share a cache (an
    upgrade, two checkouts) never read each other's entries, whose fields may differ (the
    fields are what ``BinaryInfo`` declares; a bump of ``CACHE_FORMAT`` names new files)."""
    return os.path.join(cache_dir(), "%s.v%d.marshal" % (key, CACHE_FORMAT))


def _read_cache(key: str) -> Optional[BinaryInfo]:
    path = _cache_path(key)
    try:
        with open(path, "rb") as f:
            data = marshal.loads(f.read())
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
    except (ValueError, TypeError, AttributeError, EOFError):
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
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(data))
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
