"""Output formats for recorded profiles, chosen by name or by output file name.

The registry maps a format name to ``module:Class`` and imports a writer
only when it is asked for, so choosing ``raw`` never pays for the SVG or
protobuf code.  ``write_atomic`` is how a recording reaches disk: a reader
(or a crash mid-write) never sees half a file.
"""
from __future__ import annotations

import importlib
import os

from .base import Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple, Type


__all__ = ["Writer", "formats", "needs_timeline", "writer_class", "writer_for", "format_for_path", "write_atomic"]

_REGISTRY: Dict[str, str] = {
    "flamegraph": "snapshot.writers.flamegraph:FlamegraphWriter",
    "speedscope": "snapshot.writers.speedscope:SpeedscopeWriter",
    "raw": "snapshot.writers.raw:RawWriter",
    "chrometrace": "snapshot.writers.chrometrace:ChrometraceWriter",
    "pprof": "snapshot.writers.pprof:PprofWriter",
}

_ALIASES: Dict[str, str] = {"collapsed": "raw", "svg": "flamegraph"}

#: The formats that lay samples out in time (each thread's runs of one stack): the Profile keeps
#: a timeline only for these.
_TIMELINES = frozenset(("speedscope", "chrometrace"))

# longest suffix first: ".trace.json" must win over ".json"
_SUFFIXES: Tuple[Tuple[str, str], ...] = (
    (".trace.json", "chrometrace"),
    (".chrometrace", "chrometrace"),
    (".collapsed", "raw"),
    (".speedscope", "speedscope"),
    (".pb.gz", "pprof"),
    (".pprof", "pprof"),
    (".json", "speedscope"),
    (".svg", "flamegraph"),
    (".txt", "raw"),
)


def formats() -> List[str]:
    """The format names, in the order a help text should list them."""
    return list(_REGISTRY)


def needs_timeline(format_name: str) -> bool:
    """Whether a format's writer reads the Profile's timeline (``ProfileOptions.timeline``)."""
    return _ALIASES.get(format_name.lower(), format_name.lower()) in _TIMELINES


def writer_class(format_name: str) -> Type[Writer]:
    """The class for a format name (or alias); ``ValueError`` names the known ones."""
    name = _ALIASES.get(format_name.lower(), format_name.lower())
    target = _REGISTRY.get(name)
    if target is None:
        raise ValueError("unknown output format %r (known: %s)" % (format_name, ", ".join(_REGISTRY)))
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def writer_for(format_name: str, profile=None, **options) -> Writer:
    """A fresh writer for ``format_name``, optionally over an existing Profile."""
    return writer_class(format_name)(profile, **options)


def format_for_path(path: "os.PathLike[str] | str", default: Optional[str] = None) -> Optional[str]:
    """The format implied by a file name's extension, else ``default``."""
    name = os.fspath(path).lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return fmt
    return default


def write_atomic(path: "os.PathLike[str] | str", writer: Writer) -> None:
    """Render ``writer`` to ``path``: renamed atomically over a regular file or a missing
    path, written in place into a device or FIFO, symlinks followed
    (``destination.write_output``, which also knows ``-`` for standard output)."""
    from .destination import write_output
    write_output(os.fspath(path), writer)
