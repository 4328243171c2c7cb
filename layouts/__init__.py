"""CPython structure layouts, one module per minor version.

``get_layout((3, 12))`` returns the static layout; for 3.13 and later the
snapshot engine then overlays the target's own ``_Py_DebugOffsets`` with
``with_debug_offsets``.  This package is pure data: it imports construct and
nothing of pyspy-repl's, and does no I/O.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Tuple

from .base import Layout, layout_from_module
from .debug_offsets import COOKIE, apply_debug_offsets, parse_debug_offsets, table_size
from .facts import Facts

SUPPORTED_VERSIONS: Tuple[Tuple[int, int], ...] = (
    (2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13), (3, 14), (3, 15))


class UnknownLayoutError(LookupError):
    """No layout is declared for this CPython version."""


@lru_cache(maxsize=None)
def get_layout(version: Tuple[int, int]) -> Layout:
    version = tuple(version[:2])
    if version not in SUPPORTED_VERSIONS:
        raise UnknownLayoutError("no layout for CPython %d.%d" % version)
    return layout_from_module(importlib.import_module(version_module_name(version)))


def with_debug_offsets(layout: Layout, table_bytes: bytes) -> Layout:
    """Overlay a target's ``_Py_DebugOffsets`` (raw bytes) on a static layout."""
    name = layout.facts.debug_offsets
    if name is None:
        return layout
    table = parse_debug_offsets(name, table_bytes)
    if table.cookie != COOKIE:
        raise ValueError("no _Py_DebugOffsets cookie at the start of _PyRuntime")
    major, minor = table.version >> 24, (table.version >> 16) & 0xFF
    if (major, minor) != layout.version:
        raise ValueError("debug offsets are for %d.%d, layout for %d.%d" % ((major, minor) + layout.version))
    structs, mismatches = apply_debug_offsets(layout.structs, table)
    return layout.with_structs(structs, mismatches)


def version_module_name(version: Tuple[int, int]) -> str:
    """Module declaring ``version`` (its source is what a compiled-layout cache is keyed on)."""
    return "%s.v%d_%d" % (__name__, version[0], version[1])


__all__ = ["Facts", "Layout", "SUPPORTED_VERSIONS", "UnknownLayoutError", "get_layout",
           "with_debug_offsets", "COOKIE", "table_size", "version_module_name"]
