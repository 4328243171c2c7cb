"""Compiled layouts cached on disk, so a warm attach never imports construct.

The layouts are declared with construct, and compiling them is cheap, but
importing construct costs tens of milliseconds on every ``pyspy-repl dump``.
The compiled form (plain offsets and features) is stored under
``$XDG_CACHE_HOME/pyspy-repl/layouts``, keyed by a hash of the declaring
sources, so any edit of a declaration invalidates it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from typing import Tuple

from layouts import Layout, get_layout, version_module_name

from .binary import cache_dir as binaries_cache_dir

#: The modules a compiled layout depends on, besides the version's own.
_SHARED = ("layouts._declare", "layouts.compiled", "layouts.facts", "layouts.base")


def cache_dir() -> str:
    return os.path.join(os.path.dirname(binaries_cache_dir()), "layouts")


def fingerprint(version: Tuple[int, int]) -> str:
    digest = hashlib.sha1()
    for name in (version_module_name(version),) + _SHARED:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            return ""
        with open(spec.origin, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def load_layout(version: Tuple[int, int]) -> Layout:
    """``layouts.get_layout``, through the on-disk cache of compiled layouts."""
    key = fingerprint(version)
    path = os.path.join(cache_dir(), "v%d_%d-%s.json" % (version[0], version[1], key)) if key else None
    if path:
        try:
            with open(path) as f:
                return Layout.from_data(json.load(f))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    layout = get_layout(version)
    if path:
        try:
            os.makedirs(cache_dir(), exist_ok=True)
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w") as f:
                json.dump(layout.to_data(), f)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache we cannot write only costs time
    return layout
