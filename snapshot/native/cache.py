"""On-disk cache of what native unwinding learns about a binary, keyed by build-id.

Symbol tables and decoded unwind rows of a library never change for one
build-id, and reading them again costs most of a cold attach; so they are
kept as ``marshal`` files (plain tuples, lists, dicts, bytes) under the
binary cache directory: ``.../pyspy-repl/binaries/native/KIND-BUILDID.v<N>``.
A file of another format version, or one that does not load, is ignored
and rewritten: a broken cache costs time, never a wrong answer.
"""
from __future__ import annotations

import marshal
import os

from ..binary import cache_dir

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Optional


#: 2: symbol tables name PLT stubs (``foo@plt``).
FORMAT = 2
_MAGIC = "pyspy-repl-native"


def directory() -> str:
    return os.path.join(cache_dir(), "native")


def _path(kind: str, key: str) -> str:
    return os.path.join(directory(), "%s-%s.v%d" % (kind, key, FORMAT))


def load(kind: str, key: str) -> Optional[Any]:
    if not key:
        return None
    path = _path(kind, key)
    try:
        with open(path, "rb") as f:
            # one read, then loads: marshal.load(file) reads the file in small pieces (~8x slower)
            data = marshal.loads(f.read())
        if (not isinstance(data, tuple) or len(data) != 4 or data[0] != _MAGIC or data[1] != FORMAT
                or data[2] != key):
            raise ValueError("foreign cache entry")
        return data[3]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, TypeError):
        try:
            os.unlink(path)     # corrupt: discard it
        except OSError:
            pass
        return None


def store(kind: str, key: str, value: Any) -> None:
    if not key:
        return
    try:
        os.makedirs(directory(), exist_ok=True)
        final = _path(kind, key)
        tmp = "%s.%d.tmp" % (final, os.getpid())
        with open(tmp, "wb") as f:
            marshal.dump((_MAGIC, FORMAT, key, value), f)
        os.replace(tmp, final)
    except (OSError, ValueError):
        pass  # an unwritable cache only costs time
