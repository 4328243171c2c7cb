"""Compiled layouts cached on disk, so a warm attach never imports construct.

The layouts are declared with construct, and compiling them is cheap, but
importing construct costs tens of milliseconds on every ``pyspy-repl dump``.
The compiled form (plain offsets and features) is stored under
``$XDG_CACHE_HOME/pyspy-repl/layouts`` as ``marshal`` data (several times
faster to load than JSON), keyed by the size and modification time of the
declaring sources, so any edit of a declaration invalidates it -- found with
``os.stat`` alone: no hashing, no reading of the sources on a warm attach.
"""
from __future__ import annotations

import marshal
import os

import layouts
from layouts import Layout, get_layout, version_module_name

from .binary import cache_dir as binaries_cache_dir, stable_hash

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Tuple


#: The modules a compiled layout depends on, besides the version's own (files of ``layouts``).
_SHARED = ("_declare.py", "compiled.py", "facts.py", "base.py")
#: Bumped when the cached form changes.
_FORMAT = 2


def cache_dir() -> str:
    return os.path.join(os.path.dirname(binaries_cache_dir()), "layouts")


def fingerprint(version: Tuple[int, int]) -> str:
    """A key that changes whenever a declaring source file changes ("" when one is missing)."""
    here = os.path.dirname(os.path.abspath(layouts.__file__))
    parts = [str(_FORMAT), here]
    for name in (version_module_name(version).rsplit(".", 1)[-1] + ".py",) + _SHARED:
        try:
            st = os.stat(os.path.join(here, name))
        except OSError:
            return ""
        parts.append("%s:%d:%d" % (name, st.st_size, st.st_mtime_ns))
    text = "|".join(parts).encode()
    return "%016x" % stable_hash(text)


def load_layout(version: Tuple[int, int]) -> Layout:
    """``layouts.get_layout``, through the on-disk cache of compiled layouts."""
    key = fingerprint(version)
    path = os.path.join(cache_dir(), "v%d_%d-%s.marshal" % (version[0], version[1], key)) if key else None
    if path:
        try:
            with open(path, "rb") as f:
                return Layout.from_data(marshal.loads(f.read()))
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            pass
    layout = get_layout(version)
    if path:
        try:
            os.makedirs(cache_dir(), exist_ok=True)
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "wb") as f:
                f.write(marshal.dumps(layout.to_data()))
            os.replace(tmp, path)
        except (OSError, ValueError):
            pass  # a cache we cannot write only costs time
    return layout
