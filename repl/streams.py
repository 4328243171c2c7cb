"""The tool's own standard streams, made safe to write to whatever they are.

Why: output is where a one-shot command meets the outside world, and that
world may have closed stdout (``>&-``), pointed it at a full device
(``/dev/full``, a full disk) or given it an encoding that cannot hold the
target's text (``PYTHONIOENCODING=ascii``, a C locale).  None of these may
end in a traceback: text that cannot be encoded is escaped (``\\xe9``), and a
stream that cannot be written raises ``OutputError`` -- one line, exit
status 10 -- which the dispatcher prints like any other command error.
A broken pipe stays a ``BrokenPipeError`` (``dump | head`` is not an error).
"""
from __future__ import annotations

import codecs
import errno
import io
import os
import sys

from .commands.base import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional, TextIO


#: Exit status of a command whose output could not be written (README: exit statuses).
EXIT_OUTPUT = 10


class OutputError(CommandError):
    """Standard output (or an output file) could not be written."""

    exit_code = EXIT_OUTPUT

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno is not None:
        return os.strerror(e.errno)
    return str(e) or type(e).__name__


def output_hint(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space, or send the output elsewhere (> FILE on another disk)"
    if isinstance(e, OSError) and e.errno == errno.EBADF:
        return "standard output is closed: run without >&-, or redirect it (> FILE, > /dev/null)"
    return "send the output elsewhere (> FILE)"


class GuardedStream:
    """A text stream whose write failures (other than a broken pipe) become ``OutputError``."""

    def __init__(self, stream: Optional[TextIO], name: str = "standard output"):
        self._stream = stream
        self._name = name

    def _fail(self, e: BaseException) -> "OutputError":
        return OutputError("cannot write to %s: %s" % (self._name, _describe(e)), output_hint(e))

    def write(self, text: str) -> int:
        if self._stream is None:
            raise self._fail(OSError(errno.EBADF, os.strerror(errno.EBADF)))
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as e:
            raise self._fail(e) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as e:
            raise self._fail(e) from None

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def encodes_unicode(stream) -> bool:
    """Whether ``stream`` can hold any text (a UTF encoding), e.g. so JSON may skip \\u escapes."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def escape_unencodable(stream) -> None:
    """Text the stream's encoding cannot hold is written as backslash escapes, not an error."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None or encodes_unicode(stream):
        return
    try:
        reconfigure(errors="backslashreplace")
    except (ValueError, io.UnsupportedOperation, OSError):
        pass


def prepare_standard_streams() -> None:
    """Called first by the console entry points."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            escape_unencodable(stream)


def quiet_exit_flush() -> None:
    """Flush stdout now, and make the interpreter's own flush at exit silent if it would fail."""
    stream = sys.stdout
    if stream is None:
        return
    try:
        stream.flush()
    except (OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
