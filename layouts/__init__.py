"""CPython structure layouts, one module per minor version.

``get_layout((3, 12))`` returns the static layout; for 3.13 and later the
snapshot engine then overlays the target's own ``_Py_DebugOffsets`` with
``with_debug_offsets``.  This package is pure data: it imports construct and
nothing of pyspy-repl's, and does no I/O (``records`` takes compiled code from a store its
caller fills).
"""
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Tuple

    from .base import Layout
    from .facts import Facts


#: Names this package gives from its modules, imported on first use (PEP 562): importing
#: ``layouts.records`` alone declares no data class, so a front end can give it its cache of
#: compiled methods first (``repl/startup.py``).
_LAZY = {"Layout": "base", "layout_from_module": "base", "Facts": "facts", "COOKIE": "compiled",
         "table_size": "debug_offsets", "apply_debug_offsets": "debug_offsets",
         "parse_debug_offsets": "debug_offsets"}


def _module(name: str):
    """``importlib.import_module`` for an absolute name, without importing ``importlib``
    (and ``warnings``): a one-shot command's start-up is counted in milliseconds."""
    __import__(name)
    return sys.modules[name]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = getattr(_module("%s.%s" % (__name__, module)), name)
    globals()[name] = value
    return value

SUPPORTED_VERSIONS: Tuple[Tuple[int, int], ...] = (
    (2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13), (3, 14), (3, 15))


class UnknownLayoutError(LookupError):
    """No layout is declared for this CPython version."""


#: Layouts built so far, by version (a memo, not ``functools.lru_cache``: importing functools
#: imports ``collections``, a millisecond of every start).
_BUILT: dict = {}


def get_layout(version: Tuple[int, int]) -> Layout:
    version = tuple(version[:2])
    layout = _BUILT.get(version)
    if layout is None:
        if version not in SUPPORTED_VERSIONS:
            raise UnknownLayoutError("no layout for CPython %d.%d" % version)
        from .base import layout_from_module
        layout = _BUILT[version] = layout_from_module(_module(version_module_name(version)))
    return layout


def decode_hexversion(value: int) -> Tuple[Tuple[int, int, int], str]:
    """``PY_VERSION_HEX`` (``Py_Version``, the debug-offsets version word) as (major, minor, micro) and text."""
    major, minor, micro = value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF
    level, serial = (value >> 4) & 0xF, value & 0xF
    suffix = {0xA: "a%d" % serial, 0xB: "b%d" % serial, 0xC: "rc%d" % serial}.get(level, "")
    return (major, minor, micro), "%d.%d.%d%s" % (major, minor, micro, suffix)


def is_debug_offsets_version(value: int) -> bool:
    """Whether the word after a found cookie can be the version of an interpreter that carries
    ``_Py_DebugOffsets`` (3.13 on; up to 3.39, so a future version is reported as unsupported
    rather than missed), and not random bytes that happen to spell the cookie."""
    (major, minor, _), _ = decode_hexversion(value)
    return major == 3 and 13 <= minor < 40


def with_debug_offsets(layout: Layout, table_bytes: bytes) -> Layout:
    """Overlay a target's ``_Py_DebugOffsets`` (raw bytes) on a static layout."""
    from .debug_offsets import COOKIE, apply_debug_offsets, parse_debug_offsets
    name = layout.facts.debug_offsets
    if name is None:
        return layout
    table = parse_debug_offsets(name, table_bytes)
    if table.cookie != COOKIE:
        raise ValueError("no _Py_DebugOffsets cookie at the start of _PyRuntime")
    found = decode_hexversion(table.version)[0][:2]
    if found != layout.version:
        raise ValueError("debug offsets are for %d.%d, layout for %d.%d" % (found + layout.version))
    structs, mismatches = apply_debug_offsets(layout.structs, table)
    return layout.with_structs(structs, mismatches)


def version_module_name(version: Tuple[int, int]) -> str:
    """Module declaring ``version`` (its source is what a compiled-layout cache is keyed on)."""
    return "%s.v%d_%d" % (__name__, version[0], version[1])


__all__ = ["Facts", "Layout", "SUPPORTED_VERSIONS", "UnknownLayoutError", "get_layout",
           "with_debug_offsets", "COOKIE", "table_size", "version_module_name", "decode_hexversion",
           "is_debug_offsets_version"]
