"""Where a rendered profile goes: checked before sampling, written without harming what is there.

Why: a recording is only as good as its last step.  A path that cannot be
written must be known before minutes of sampling (``check_destination``),
and writing must never replace something that is not a plain file: renaming
a temporary file over ``/dev/null`` (as root) turns the device into a regular
file, over ``/dev/stdout`` replaces the symlink, over a FIFO leaves its
reader waiting forever.  So ``write_output`` renames atomically only over a
regular file or a missing path (a reader never sees half a file), follows
symlinks to what they point at, and writes into anything else (devices,
FIFOs, a terminal) in place.  ``-`` and a path that is our own standard output
(``/dev/stdout``, ``/proc/self/fd/1``) write to the stream we were given.

Nothing here prints; failures are ``OutputPathError`` (a ``SnapshotError``
with a true hint).
"""
from __future__ import annotations

import errno
import os
import stat

from ..errors import SnapshotError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import IO, Optional


#: The path meaning "standard output" (as py-spy's ``-o -``... and most Unix tools).
STDOUT = "-"


class OutputPathError(SnapshotError):
    """The output path cannot be written (missing folder, no permission, a directory...)."""

    exit_code = 10
    hint = "choose another output path with -o FILE (or -o - for standard output)"


def _reason(e: OSError) -> str:
    return os.strerror(e.errno) if e.errno else str(e)


def resolve(path: str) -> str:
    """The path writes land on: symlinks followed (a dangling one: the file it names)."""
    return os.path.realpath(os.path.expanduser(path))


def is_standard_output(path: str, stdout_fd: Optional[int] = None) -> bool:
    """``-``, or a path naming the very file our standard output is (``/dev/stdout``)."""
    if path == STDOUT:
        return True
    if stdout_fd is None:
        return False
    try:
        a, b = os.stat(path), os.fstat(stdout_fd)
    except (OSError, ValueError):
        return False
    if stat.S_ISREG(a.st_mode) and not path.startswith(("/dev/", "/proc/")):
        return False    # a regular file that stdout also points at: write it as a file
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_destination(path: str, stdout_fd: Optional[int] = None) -> None:
    """Raise ``OutputPathError`` now if ``path`` could not take the profile later.

    Cheap and side-effect free: a probe file is created and removed in the
    folder of a missing or regular path; nothing is opened on a device or
    FIFO (opening a FIFO would wait for its reader).
    """
    if is_standard_output(path, stdout_fd):
        return
    real = resolve(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputPathError("cannot write %s: %s" % (path, _reason(e))) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputPathError("cannot write %s: it is a directory" % path,
                              "give a file name inside it, e.g. -o %s" % os.path.join(path, "profile.svg"))
    if st is not None and not stat.S_ISREG(st.st_mode):
        if not os.access(real, os.W_OK):
            raise OutputPathError("cannot write %s: %s" % (path, os.strerror(errno.EACCES)))
        return
    folder = os.path.dirname(real) or "."
    if not os.path.isdir(folder):
        raise OutputPathError("cannot write %s: the folder %s does not exist" % (path, folder),
                              "create it first (mkdir -p %s), or choose another path" % folder)
    try:
        fd, probe = _create_probe(folder, os.path.basename(real))
    except OSError as e:
        if st is not None and os.access(real, os.W_OK):
            return      # a writable file in a folder we cannot add to: written in place
        raise OutputPathError("cannot write %s: %s" % (path, _reason(e))) from None
    os.close(fd)
    os.unlink(probe)


def _create_probe(folder: str, base: str):
    """A new empty file in ``folder`` (O_EXCL), as ``tempfile.mkstemp`` makes one.

    Why not mkstemp: this runs before the first sample, and ``tempfile`` (with ``random``,
    ``weakref``, ``shutil``) is milliseconds of imports that only the final write needs."""
    for attempt in range(100):
        probe = os.path.join(folder, ".%s.%d-%d.probe" % (base, os.getpid(), attempt))
        try:
            return os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), probe
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free probe name", folder)


def _umask() -> int:
    from ..process.procfs import own_umask
    mask = own_umask()
    return 0o022 if mask is None else mask


def _render(writer, stream: IO) -> None:
    writer.finish(stream)
    stream.flush()


def _open_stream(fd: int, binary: bool) -> IO:
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def write_output(path: str, writer, stdout: Optional[IO] = None) -> str:
    """Render ``writer`` to ``path`` (see the module docstring); returns where it went.

    ``stdout``: the binary stream behind standard output, for ``-`` and
    ``/dev/stdout``.  ``OSError`` propagates (the caller picks a fallback).
    """
    stdout_fd = None
    if stdout is not None:
        try:
            stdout_fd = stdout.fileno()
        except (OSError, ValueError, AttributeError):
            stdout_fd = None
    if stdout is not None and is_standard_output(path, stdout_fd):
        if writer.binary:
            _render(writer, stdout)
        else:
            import io
            text = io.TextIOWrapper(stdout, encoding="utf-8", newline="\n", write_through=True)
            try:
                _render(writer, text)
            finally:
                text.detach()
        return STDOUT
    real = resolve(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # a device, FIFO, socket or terminal: write into it, never replace it
        fd = os.open(real, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        with _open_stream(fd, writer.binary) as stream:
            _render(writer, stream)
        return real
    try:
        _write_atomic(real, writer, st)
    except PermissionError:
        if st is None or not os.access(real, os.W_OK):
            raise
        # the folder refuses a temporary file but the file itself may be written
        fd = os.open(real, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
        with _open_stream(fd, writer.binary) as stream:
            _render(writer, stream)
    return real


def _write_atomic(real: str, writer, st) -> None:
    """Temp file beside ``real``, fsync, keep the old mode, rename over it (regular or missing only)."""
    import tempfile     # at the end of a recording, not before its first sample
    directory = os.path.dirname(real) or "."
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(real) + ".", suffix=".tmp", dir=directory)
    try:
        with _open_stream(fd, writer.binary) as stream:
            _render(writer, stream)
            os.fsync(stream.fileno())
        mode = (st.st_mode & 0o7777) if st is not None else (0o666 & ~_umask())
        os.chmod(temp, mode)
        os.replace(temp, real)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def fallback_path(path: str, extension: str, pid: int, stamp: str) -> str:
    """A fresh file for a profile ``path`` could not take: the current folder, else the temp folder."""
    base = os.path.basename(path.rstrip("/")) if path not in ("", STDOUT) else ""
    if not base or base.startswith("."):
        base = "pyspy-repl-%d-%s%s" % (pid, stamp, extension)
    if extension and not base.lower().endswith(extension.lower()):
        base += extension
    stem = "pyspy-repl-saved-" + base
    import tempfile
    for folder in (os.getcwd(), tempfile.gettempdir()):
        candidate = os.path.join(folder, stem)
        n = 1
        while os.path.lexists(candidate):
            candidate = os.path.join(folder, "%s.%d" % (stem, n))
            n += 1
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError:
            continue
        os.close(fd)
        return candidate
    raise OutputPathError("no folder to save the profile in (neither %s nor %s is writable)"
                          % (os.getcwd(), tempfile.gettempdir()))
