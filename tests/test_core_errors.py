"""Core files: bad input gives a typed, one-line error with a true hint, never a traceback.

Uses small kernel cores of a copy of ``sleep`` (a non-Python program, ~0.1 s each):
not a core (text, empty, a directory, an executable given as core), truncated cores,
damaged notes, a core whose binary is gone (found again by --lib-search-path, by
basename and by path suffix, or by --executable) or rebuilt (build-id mismatch
naming both ids), and compressed cores (gzip, xz, bzip2, zstd; a cut-short stream;
zstd with no decompressor).  The CLI forms are in test_core_cli.py.

Run:  python -m pytest tests/test_core_errors.py
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

import pytest

from test_core import kernel_cores_problem, allow_kernel_core, make_kernel_core

from snapshot.errors import MemoryReadError, SnapshotError
from snapshot import elf
from snapshot.process.core import (BinaryNotFoundError, BuildIdMismatchError, CoreFileError, CoreProcess,
                                   CoreTruncatedError, NotACoreError)
from snapshot.process.decompress import CoreDecompressError

SLEEP = shutil.which("sleep") or "/bin/sleep"


def one_line(error: SnapshotError) -> None:
    assert "\n" not in error.message and error.message, error.message
    assert error.hint and "\n" not in error.hint, error.hint


class SleepCore:
    def __init__(self, root: str):
        self.root = root
        self.exe = os.path.join(root, "bin", "sleepy")
        os.makedirs(os.path.dirname(self.exe))
        shutil.copy2(os.path.realpath(SLEEP), self.exe)
        with open(self.exe, "rb") as fh:
            self.original = fh.read()
        proc = subprocess.Popen([self.exe, "1000"], cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # Mapped is not enough: on a loaded machine the program may still be in the
            # dynamic loader when the signal comes, and its core then says "R".
            deadline = time.monotonic() + 30
            while not _in_nanosleep(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _in_nanosleep(proc.pid), "%s never reached clock_nanosleep" % self.exe
            self.pid = proc.pid
            allow_kernel_core(proc.pid)
            self.core = make_kernel_core(proc, root)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def code_mapping(self, process):
        return next(m for m in process.maps() if m.path == self.exe and "x" in m.perms)

    def stash(self) -> str:
        """Move the binary away (the core's file is gone); returns where it went."""
        hidden = os.path.join(self.root, "hidden")
        os.makedirs(hidden, exist_ok=True)
        target = os.path.join(hidden, "sleepy")
        os.rename(self.exe, target)
        return target


NR_CLOCK_NANOSLEEP = 230  # x86-64


def _in_nanosleep(pid: int) -> bool:
    """Blocked in clock_nanosleep, as the kernel says (/proc/PID/syscall, then the run state)."""
    try:
        with open("/proc/%d/syscall" % pid) as fh:
            number = fh.read().split()[0]
        with open("/proc/%d/stat" % pid) as fh:
            state = fh.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return number == str(NR_CLOCK_NANOSLEEP) and state == "S"


@pytest.fixture
def sleep_core(tmp_path):
    problem = kernel_cores_problem()
    if problem:
        pytest.skip(problem)
    return SleepCore(str(tmp_path))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# -- not a core -----------------------------------------------------------------------------
def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a core\n")
    with pytest.raises(NotACoreError) as info:
        CoreProcess(str(path))
    assert "is not a core file" in info.value.message and "text" in info.value.message
    one_line(info.value)


def test_empty_file(tmp_path):
    path = tmp_path / "core"
    path.write_bytes(b"")
    with pytest.raises(NotACoreError, match="empty"):
        CoreProcess(str(path))


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(NotACoreError, match="directory"):
        CoreProcess(str(tmp_path))
    with pytest.raises(CoreFileError, match="no such core file") as info:
        CoreProcess(str(tmp_path / "nope"))
    one_line(info.value)


def test_executable_given_as_core():
    with pytest.raises(NotACoreError) as info:
        CoreProcess(SLEEP)
    assert "not a core file" in info.value.message and "ELF" in info.value.message
    assert "--executable" in info.value.hint
    one_line(info.value)


def test_damaged_notes(tmp_path):
    """A synthetic ET_CORE whose note claims more bytes than its segment holds."""
    note = struct.pack("<III", 5, 1 << 20, 1) + b"CORE\0\0\0\0"
    phoff = 64
    notes_at = phoff + 56
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), elf.ET_CORE, elf.EM_X86_64, 1,
                         0, phoff, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", elf.PT_NOTE, 0, notes_at, 0, 0, len(note), 0, 1)
    path = tmp_path / "core"
    path.write_bytes(header + phdr + note)
    with pytest.raises(CoreTruncatedError, match="damaged notes") as info:
        CoreProcess(str(path))
    one_line(info.value)
    # and no thread at all: not a process core
    path.write_bytes(header + struct.pack("<IIQQQQQQ", elf.PT_NOTE, 0, notes_at, 0, 0, 0, 0, 1))
    with pytest.raises(NotACoreError, match="no thread records"):
        CoreProcess(str(path))


# -- truncated -------------------------------------------------------------------------------
def test_truncated_core(sleep_core, tmp_path):
    with open(sleep_core.core, "rb") as fh:
        data = fh.read()
    for size in (10, 100, 1000, len(data) // 2, len(data) - 1):
        path = tmp_path / ("cut-%d" % size)
        path.write_bytes(data[:size])
        with pytest.raises(CoreTruncatedError) as info:
            CoreProcess(str(path))
        assert "cut short" in info.value.message, (size, info.value.message)
        one_line(info.value)


# -- a non-Python program, and its binary -----------------------------------------------------------
def test_core_of_sleep_reads(sleep_core):
    with CoreProcess(sleep_core.core) as process:
        assert process.pid == sleep_core.pid
        assert process.name() == "sleepy"
        assert process.command_line() == [sleep_core.exe, "1000"]
        assert process.executable() == sleep_core.exe
        assert [t.tid for t in process.threads()] == [sleep_core.pid]
        assert process.threads()[0].state == "S"  # in clock_nanosleep
        assert process.signal == signal.SIGABRT
        code = sleep_core.code_mapping(process)
        assert process.read(code.start, 64) == sleep_core.original[code.offset:code.offset + 64]
        files = {f.path: f for f in process.mapped_files()}
        assert files[sleep_core.exe].local_path == sleep_core.exe
        assert files[sleep_core.exe].build_id == elf.file_facts(sleep_core.exe)[1]


def test_missing_binary(sleep_core, tmp_path):
    moved = sleep_core.stash()
    with CoreProcess(sleep_core.core) as process:
        code = sleep_core.code_mapping(process)   # maps come from the core alone
        assert {f.path: f.local_path for f in process.mapped_files()}[sleep_core.exe] == ""
        with pytest.raises(BinaryNotFoundError) as info:
            process.read(code.start, 16)
        assert isinstance(info.value, MemoryReadError)
        assert sleep_core.exe in info.value.message and "not on this machine" in info.value.message
        assert "--lib-search-path" in info.value.hint
        one_line(info.value)
        assert process.read_many([(code.start, 16)]) == [None]
        with pytest.raises(BinaryNotFoundError):
            process.open_file(sleep_core.exe)
        # what the core holds itself still reads
        stack = next(m for m in process.maps() if "w" in m.perms and not m.path)
        assert len(process.read(stack.start, 8)) == 8
    expected = sleep_core.original[code.offset:code.offset + 16]
    # found again by basename in a search directory
    with CoreProcess(sleep_core.core, search_path=[os.path.dirname(moved)]) as process:
        assert process.read(code.start, 16) == expected
    # by path suffix (a sysroot-like copy of the tree)
    sysroot = tmp_path / "sysroot"
    deep = str(sysroot) + sleep_core.exe
    os.makedirs(os.path.dirname(deep))
    shutil.copy2(moved, deep)
    with CoreProcess(sleep_core.core, search_path=[str(tmp_path / "elsewhere"), str(sysroot)]) as process:
        assert process.read(code.start, 16) == expected
        assert {f.path: f.local_path for f in process.mapped_files()}[sleep_core.exe] == deep
    # the program under another name, given with --executable
    renamed = str(tmp_path / "renamed-program")
    shutil.copy2(moved, renamed)
    with CoreProcess(sleep_core.core, executable=renamed) as process:
        assert process.read(code.start, 16) == expected


def _patched_build_id(data: bytes) -> bytes:
    build_id = bytes.fromhex(elf.build_id(elf.bytes_reader(data)))
    at = data.index(build_id)
    return data[:at + len(build_id) - 1] + bytes([data[at + len(build_id) - 1] ^ 0xFF]) + data[at + len(build_id):]


def test_build_id_mismatch(sleep_core, tmp_path):
    moved = sleep_core.stash()
    with open(sleep_core.exe, "wb") as fh:
        fh.write(_patched_build_id(sleep_core.original))
    want = elf.file_facts(moved)[1]
    have = elf.file_facts(sleep_core.exe)[1]
    assert want != have
    with CoreProcess(sleep_core.core) as process:
        code = sleep_core.code_mapping(process)
        with pytest.raises(BuildIdMismatchError) as info:
            process.read(code.start, 16)
        assert want in info.value.message and have in info.value.message
        one_line(info.value)
        with pytest.raises(BuildIdMismatchError):
            process.open_file(sleep_core.exe)
        assert process.binary_error(sleep_core.exe) is not None
    # the right build on the search path wins over the wrong one at the recorded path
    with CoreProcess(sleep_core.core, search_path=[os.path.dirname(moved)]) as process:
        assert process.read(code.start, 16) == sleep_core.original[code.offset:code.offset + 16]
        assert process.binary_error(sleep_core.exe) is None


# -- compressed -----------------------------------------------------------------------------------------
def _compress(kind: str, src: str, dst: str) -> None:
    with open(src, "rb") as fh:
        data = fh.read()
    if kind == "zstd":
        subprocess.run(["zstd", "-q", "-o", dst, src], check=True)
        return
    opener = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[kind]
    with opener(dst, "wb") as out:
        out.write(data)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "bzip2"])
def test_compressed_core(sleep_core, tmp_path, kind):
    if kind == "zstd" and shutil.which("zstd") is None:
        try:
            import zstandard  # noqa: F401
        except ImportError:
            pytest.skip("neither the zstd program nor the zstandard module is available")
        pytest.skip("the zstd program is needed to make the test file")
    packed = str(tmp_path / ("core." + kind))
    _compress(kind, sleep_core.core, packed)
    with CoreProcess(sleep_core.core) as plain, CoreProcess(packed) as process:
        assert process.compression == kind
        assert process.maps() == plain.maps()
        assert process.registers(sleep_core.pid) == plain.registers(sleep_core.pid)
        code = sleep_core.code_mapping(process)
        stack = [m for m in plain.maps() if "w" in m.perms]
        requests = [(code.start, 64)] + [(m.start, min(m.size, 4096)) for m in stack]
        assert process.read_many(requests) == plain.read_many(requests)
        first_copy = process.local_core_path
    with CoreProcess(packed) as again:      # the cached copy is reused
        assert again.local_core_path == first_copy


def test_truncated_gzip(sleep_core, tmp_path):
    packed = tmp_path / "core.gz"
    _compress("gzip", sleep_core.core, str(packed))
    data = packed.read_bytes()
    packed.write_bytes(data[:len(data) // 2])
    with pytest.raises(CoreDecompressError, match="cut short") as info:
        CoreProcess(str(packed))
    one_line(info.value)
    assert not [n for n in os.listdir(tmp_path / "cache" / "pyspy-repl" / "cores")], "partial copy left behind"


def test_zstd_without_decompressor(tmp_path, monkeypatch):
    path = tmp_path / "core.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(60))
    monkeypatch.setitem(sys.modules, "zstandard", None)   # import zstandard -> ImportError
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(CoreDecompressError) as info:
        CoreProcess(str(path))
    assert "zstd" in info.value.message and "zstd -d" in info.value.hint
    one_line(info.value)


def test_damaged_headers_and_notes_never_crash(sleep_core, tmp_path):
    """Random byte changes in a real core's headers and notes: a typed error or a usable core, no crash."""
    import random
    with open(sleep_core.core, "rb") as fh:
        data = bytearray(fh.read())
    with CoreProcess(sleep_core.core) as plain:
        hot = max(4096, min(len(data), 64 + 56 * 64 + 16384))   # ELF header, program headers, notes
        probe = [(m.start, 64) for m in plain.maps()[:8]]
    rng = random.Random(1234)
    outcomes = {"opened": 0, "refused": 0}
    for round_ in range(int(os.environ.get('CORE_FUZZ_ROUNDS', 300))):
        mutated = bytearray(data)
        for _ in range(rng.choice((1, 2, 8, 32))):
            mutated[rng.randrange(hot)] = rng.randrange(256)
        path = tmp_path / "core"
        path.write_bytes(bytes(mutated))
        try:
            process = CoreProcess(str(path))
        except SnapshotError as e:
            one_line(e)
            outcomes["refused"] += 1
            continue
        outcomes["opened"] += 1
        with process:
            for call in (process.maps, process.threads, process.command_line, process.name, process.executable,
                         process.mapped_files):
                try:
                    call()
                except SnapshotError:
                    pass
            process.read_many(probe)
    assert outcomes["opened"] and outcomes["refused"], outcomes
