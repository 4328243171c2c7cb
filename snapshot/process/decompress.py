"""Compressed core files (gzip, zstd, xz, bzip2): decompressed once into a cache, then mmapped.

A core can be GBs and is read at random addresses, so it is expanded to a
plain file rather than streamed; the copy lives under
``$XDG_CACHE_HOME/pyspy-repl/cores`` keyed by the compressed file's name,
size and mtime, so reopening the same core (the REPL, a second ``dump``)
costs nothing.  Only the most recent few copies are kept: they are large.
zstd needs the ``zstandard`` module or the ``zstd`` program; without either
the error says how to decompress by hand.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from ..errors import SnapshotError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional


#: Decompressed copies kept in the cache (the oldest others are removed).
KEEP = 2
CHUNK = 1 << 20

MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)
_COMMANDS = {"gzip": "gzip -dk", "zstd": "zstd -d", "xz": "xz -dk", "bzip2": "bzip2 -dk"}


class CoreDecompressError(SnapshotError):
    """A compressed core could not be expanded (no decompressor, corrupt stream, no space)."""

    exit_code = 9
    hint = "decompress it yourself and pass the result with --core"


def compression(head: bytes) -> Optional[str]:
    """The compression format named by a file's first bytes, or None for a plain file."""
    for magic, name in MAGICS:
        if head.startswith(magic):
            return name
    return None


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyspy-repl", "cores")


def decompressed(path: str, kind: str) -> str:
    """A plain copy of compressed core ``path`` (made now, or found in the cache)."""
    st = os.stat(path)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(path))[:80]
    directory = cache_dir()
    target = os.path.join(directory, "%s-%d-%d.core" % (stem, st.st_size, st.st_mtime_ns))
    if os.path.exists(target):
        os.utime(target)  # most recently used: survives the pruning below
        return target
    manual = "%s %s" % (_COMMANDS[kind], path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise CoreDecompressError("cannot create the cache directory %s for the decompressed core: %s"
                                  % (directory, e.strerror), "decompress it yourself (%s) and pass the result"
                                  % manual) from None
    tmp = "%s.%d.tmp" % (target, os.getpid())
    try:
        with open(tmp, "wb") as raw:
            out = SparseWriter(raw)
            _expand(path, kind, out, manual)
            out.close()
        os.replace(tmp, target)
    except OSError as e:
        _remove(tmp)
        raise CoreDecompressError("could not decompress %s into %s: %s" % (path, directory, e.strerror or e),
                                  "free space there, or decompress it yourself (%s) and pass the result"
                                  % manual) from None
    except BaseException:
        _remove(tmp)
        raise
    _prune(directory, keep=target)
    return target


class SparseWriter:
    """Writes a file, seeking over zero blocks: most of a core is untouched (zero) memory,
    so the copy costs disk only for what the process had written."""

    BLOCK = 1 << 16
    _ZERO = bytes(BLOCK)

    def __init__(self, raw):
        self.raw = raw
        self.size = 0

    def write(self, data) -> int:
        data = bytes(data)  # bytes compare with memcmp; a memoryview compares byte by byte
        size = len(data)
        if size and data == bytes(size):
            self.raw.seek(size, os.SEEK_CUR)
        else:
            block = self.BLOCK
            for start in range(0, size, block):
                piece = data[start:start + block]
                if len(piece) == block and piece == self._ZERO:
                    self.raw.seek(block, os.SEEK_CUR)
                else:
                    self.raw.write(piece)
        self.size += size
        return size

    def close(self) -> None:
        self.raw.truncate(self.size)  # a trailing hole still counts in the size


def _expand(path: str, kind: str, out, manual: str) -> None:
    if kind == "zstd":
        _expand_zstd(path, out, manual)
        return
    import bz2
    import gzip
    import lzma
    import zlib
    opener = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[kind]
    try:
        with opener(path, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
    except EOFError:
        raise CoreDecompressError("%s is cut short: its %s stream ends early" % (path, kind),
                                  "the core was truncated while written or copied; copy it again") from None
    except (gzip.BadGzipFile, lzma.LZMAError, zlib.error, ValueError) as e:
        raise CoreDecompressError("%s is not a valid %s file: %s" % (path, kind, e),
                                  "check the file (%s)" % manual) from None


def _expand_zstd(path: str, out, manual: str) -> None:
    try:
        import zstandard  # type: ignore
    except ImportError:
        zstandard = None
    if zstandard is not None:
        try:
            with open(path, "rb") as src:
                zstandard.ZstdDecompressor().copy_stream(src, out, read_size=CHUNK, write_size=CHUNK)
            return
        except zstandard.ZstdError as e:
            raise CoreDecompressError("%s is not a valid zstd file: %s" % (path, e),
                                      "check the file (%s)" % manual) from None
    program = shutil.which("zstd")
    if program is None:
        raise CoreDecompressError("%s is zstd-compressed, and neither the zstandard module nor the zstd "
                                  "program is available" % path,
                                  "pip install zstandard, or decompress it yourself (%s) and pass the result"
                                  % manual)
    with open(path, "rb") as src, subprocess.Popen([program, "-dc", "-q"], stdin=src, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE) as child:
        while True:
            chunk = child.stdout.read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
        errors = child.stderr.read()
        status = child.wait()
    if status != 0:
        reason = (errors.decode("utf-8", "replace").strip().splitlines() or ["failed"])[-1]
        raise CoreDecompressError("zstd could not decompress %s: %s" % (path, reason),
                                  "check the file (%s)" % manual)


def _prune(directory: str, keep: str) -> None:
    try:
        entries = [os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".core")]
        entries.sort(key=lambda p: os.stat(p).st_mtime, reverse=True)
    except OSError:
        return
    for old in [p for p in entries if p != keep][KEEP - 1:]:
        _remove(old)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
