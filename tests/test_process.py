"""The ``Process`` seam against real processes of every interpreter of the matrix.

* memory-source axis: a real target is captured once through
  ``RecordingProcess``, killed, and replayed offline from the ``ImageProcess``
  it built; the snapshot (stacks, names, locals, idleness) equals the live one;
* discovery-method axis: the ``_PyRuntime`` symbol, the ``.PyRuntime`` section
  and the 3.13+ debug-offsets cookie scan, each forced, find the same runtime
  address and version; the fast build-id reader equals pyelftools';
* registers of paused threads: pc in an executable mapping, sp in a writable
  stack mapping, and sleeping threads stopped inside a system call.

Run:  python -m pytest tests/test_process.py -k "3.8 or 3.12"
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import pythons
from pythons import Target, target_script

sys.path.insert(0, pythons.REPO)
from layouts import get_layout  # noqa: E402
from snapshot.discovery import METHODS, locate  # noqa: E402
from snapshot.errors import InterpreterNotFoundError  # noqa: E402
from snapshot.process.image import ImageProcess, RecordingProcess  # noqa: E402
from snapshot.process.live import LiveProcess  # noqa: E402
from snapshot.target import attach_process  # noqa: E402

SLEEPERS = r"""
import sys, threading, time
def sleeper(n):
    value = n * 7
    time.sleep(1000)
threads = [threading.Thread(target=sleeper, args=(i,), name="sleeper-%d" % i, daemon=True) for i in range(3)]
for t in threads: t.start()
time.sleep(0.3)
open(sys.argv[1], "w").write("ready")
time.sleep(1000)
"""


@pytest.fixture(scope="module")
def dump_target(python, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("process-%s" % python.id))
    truth_path = os.path.join(workdir, "truth.json")
    t = Target(python.path, target_script("dump_target.py"), [truth_path, "--workdir", workdir, "--no-busy"],
               workdir=workdir)
    try:
        truth = t.wait_truth(truth_path, timeout=90)
        yield t, truth
    finally:
        t.stop()


@pytest.fixture
def sleepers(python, tmp_path):
    ready = str(tmp_path / "ready")
    p = subprocess.Popen([python.path, "-c", SLEEPERS, ready], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            assert p.poll() is None, "sleepers target died: %s" % p.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "sleepers target not ready"
            time.sleep(0.02)
        # until every thread sleeps
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = pythons.task_states(p.pid)
            if len(states) == 4 and all(s[0] == "S" for s in states.values()):
                break
            time.sleep(0.02)
        yield p
    finally:
        p.kill()
        p.wait()


def _comparable(snap):
    data = snap.to_dict()
    data.pop("taken_at_ns")
    return data


# --------------------------------------------------------------------------
# memory-source axis
# --------------------------------------------------------------------------
def test_image_replay_equals_live(python, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("replay-%s" % python.id))
    truth_path = os.path.join(workdir, "truth.json")
    t = Target(python.path, target_script("dump_target.py"), [truth_path, "--workdir", workdir, "--no-busy"],
               workdir=workdir)
    try:
        truth = t.wait_truth(truth_path, timeout=90)
        recorder = RecordingProcess(LiveProcess(t.pid))
        target = attach_process(recorder)
        live = target.snapshot(locals=True)
        image = recorder.image()
        target.close()
    finally:
        t.stop()
    assert not t.alive()
    # The image survives a round trip through its saved form, and replays with the target gone.
    image = ImageProcess.from_dict(json.loads(json.dumps(image.to_dict())))
    replayed = attach_process(image).snapshot(locals=True)
    assert _comparable(replayed) == _comparable(live)
    # ... and the live snapshot is the real one, not an empty agreement.
    assert len(live.threads) == len(truth["threads"])
    names = {th.name for th in live.threads}
    assert {th["name"] for th in truth["threads"]} <= names
    assert any(f.locals for th in live.threads for f in th.frames)


def test_image_replay_nonblocking_and_stacks_only(python, dump_target):
    t, truth = dump_target
    recorder = RecordingProcess(LiveProcess(t.pid))
    target = attach_process(recorder)
    live = target.sample(blocking=False)
    replayed = attach_process(recorder.image()).sample(blocking=False)
    target.close()
    assert _comparable(replayed) == _comparable(live)
    assert len(live.threads) == len(truth["threads"])


# --------------------------------------------------------------------------
# discovery-method axis
# --------------------------------------------------------------------------
def test_forced_discovery_methods_agree(python, dump_target):
    t, _ = dump_target
    found = {}
    skipped = []
    process = LiveProcess(t.pid)
    try:
        files = process.mapped_files()
        default = locate(process)
        layout = get_layout(default.version[:2])
        for method in METHODS:
            try:
                found[method] = locate(process, method)
            except InterpreterNotFoundError as e:
                skipped.append((method, str(e)))
    finally:
        process.close()
    assert "symbol" in found, "the _PyRuntime symbol is exported by every build: %s" % skipped
    from snapshot import binary
    has_section = any(binary.load(f.local_path).pyruntime_section for f in files
                      if f.path == default.binary_path)
    assert ("section" in found) == has_section, (has_section, skipped)
    if layout.facts.debug_offsets:
        assert "cookie" in found, "3.13+ keeps the debug-offsets cookie in _PyRuntime: %s" % skipped
    else:
        assert "cookie" not in found
    for method, interp in found.items():
        assert (interp.runtime_addr, interp.version) == (default.runtime_addr, default.version), method
    print("%s: methods found %s, not applicable %s" % (python.id, sorted(found), skipped))


def test_discovery_identifies_only_the_files_the_interpreter_can_be_in(python, dump_target, monkeypatch):
    """``mapped_files(only=...)`` gives what filtering every file would, and discovery opens
    only libpython and the executable (not the thirty-odd extension modules and libraries)."""
    from snapshot import elf
    t, _ = dump_target
    opened = []
    real = elf.identify
    monkeypatch.setattr(elf, "identify", lambda path: opened.append(path) or real(path))
    process = LiveProcess(t.pid)
    try:
        interp = locate(process)
        located = list(opened)
        wanted = {interp.binary_path, process.executable()}
        assert 1 <= len(located) <= 2 and len(located) == len(set(located)), located
        every = LiveProcess(t.pid).mapped_files()
        assert len(every) > len(located)
        assert process.mapped_files(only=wanted.__contains__) == [f for f in every if f.path in wanted]
    finally:
        process.close()


def _pyelftools_build_id(elf) -> str:
    for section in elf.iter_sections():
        if section.header.sh_type == "SHT_NOTE":
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return note["n_desc"]
    return ""


def test_fast_build_id_equals_pyelftools(python, dump_target):
    from elftools.elf.elffile import ELFFile

    from snapshot import binary
    from snapshot import elf as fastelf

    t, _ = dump_target
    process = LiveProcess(t.pid)
    try:
        files = process.mapped_files()
        interp = locate(process)
    finally:
        process.close()
    assert files
    checked = 0
    for f in files:
        with open(f.local_path, "rb") as fh:
            elf = ELFFile(fh)
            expected = _pyelftools_build_id(elf)
            loads = [s["p_vaddr"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            elf_type = elf["e_type"]
        ident = fastelf.identify(f.local_path)
        assert ident is not None, f.path
        assert ident.build_id == expected == f.build_id, f.path
        assert ident.type == {"ET_EXEC": fastelf.ET_EXEC, "ET_DYN": fastelf.ET_DYN}.get(elf_type), f.path
        assert ident.first_load_vaddr == (min(loads) & ~0xFFF), f.path
        checked += 1
    assert any(f.path == interp.binary_path and (f.load_bias == interp.load_base or interp.load_base == 0)
               for f in files)
    assert checked >= 3
    # binary.analyse reads sections and values with the fast reader too: same facts as pyelftools
    lib = next(f for f in files if f.path == interp.binary_path)
    info = binary.analyse(lib.local_path)
    with open(lib.local_path, "rb") as fh:
        elf = ELFFile(fh)
        section = elf.get_section_by_name(".PyRuntime")
        assert info.pyruntime_section == (section["sh_addr"] if section is not None else None)
        assert info.elf_type == elf["e_type"] and info.build_id == lib.build_id
        if "Py_Version" in info.symbols:
            for segment in elf.iter_segments():
                start = segment["p_vaddr"]
                if segment["p_type"] == "PT_LOAD" and start <= info.symbols["Py_Version"] < start + segment["p_filesz"]:
                    fh.seek(segment["p_offset"] + info.symbols["Py_Version"] - start)
                    assert info.py_version_hex == int.from_bytes(fh.read(4), "little")


# --------------------------------------------------------------------------
# registers of paused threads
# --------------------------------------------------------------------------
def test_registers_of_paused_threads(python, sleepers):
    process = LiveProcess(sleepers.pid)
    try:
        maps = process.maps()
        with process.paused() as stopped:
            assert len(stopped) == 4
            regs = {tid: process.registers(tid) for tid in stopped}
            syscalls = process.in_syscall(stopped)
        with pytest.raises(Exception, match="not paused"):
            process.registers(stopped[0])
    finally:
        process.close()

    def mapping(address):
        return next((m for m in maps if address in m), None)

    for tid, r in regs.items():
        code = mapping(r.pc)
        assert code is not None and "x" in code.perms, "thread %d: pc 0x%x not in executable memory" % (tid, r.pc)
        stack = mapping(r.sp)
        assert stack is not None and "rw" in stack.perms, "thread %d: sp 0x%x not in a writable mapping" % (tid, r.sp)
        if tid == sleepers.pid:
            assert stack.path == "[stack]", "main thread's sp is not on [stack]: %s" % (stack,)
        else:
            assert stack.path in ("", "[stack]") or stack.path.startswith("[anon"), stack
        assert r.in_syscall, "thread %d sleeps, so it stopped inside a system call" % tid
        assert syscalls.get(tid) is True, tid


def test_failed_detach_waits_for_the_stop_and_detaches_again(python, sleepers):
    """A thread seized but not (yet) stopped refuses PTRACE_DETACH (ESRCH): it must still end untraced."""
    from snapshot.process import ptrace
    from snapshot.process.pause import Pause

    pause = Pause(sleepers.pid)
    tids = sorted(pythons.task_states(sleepers.pid))
    for tid in tids:
        assert ptrace.call(ptrace.PTRACE_SEIZE, tid) == 0
        pause.attached.append(tid)
    assert pythons.tracer_pid(sleepers.pid) == os.getpid()
    pause.detach_all()
    assert not pythons.stopped_or_traced(sleepers.pid), pythons.task_states(sleepers.pid)


# --------------------------------------------------------------------------
# synthetic: image reads, bad ELF files typed at the boundary
# --------------------------------------------------------------------------
def test_image_segments_merge_and_bound_reads():
    from snapshot.errors import MemoryReadError
    from snapshot.process.image import merge_segments

    assert merge_segments([(0x1000, b"abcd"), (0x1002, b"XYZ"), (0x2000, b"q"), (0x1005, b"!")]) == [
        (0x1000, b"abXYZ!"), (0x2000, b"q")]
    image = ImageProcess([(0x1000, b"abcd"), (0x1004, b"efgh")])
    assert image.read(0x1002, 4) == b"cdef"
    assert image.read_many([(0x1000, 2), (0x3000, 1), (0x1007, 2)]) == [b"ab", None, None]
    with pytest.raises(MemoryReadError):
        image.read(0x1007, 2)
    assert ImageProcess.from_dict(json.loads(json.dumps(image.to_dict()))).read(0x1000, 8) == b"abcdefgh"


def test_bad_elf_files_are_typed_errors(tmp_path):
    from snapshot import binary
    from snapshot.errors import BinaryReadError, SnapshotError
    from snapshot import elf as fastelf

    real = sys.executable if os.path.exists(sys.executable) else "/bin/sh"
    with open(os.path.realpath(real), "rb") as fh:
        head = fh.read(4096)
    for name, data in [("empty", b""), ("text", b"not an elf at all" * 10), ("truncated", head[:200]),
                       ("headers-only", head)]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(BinaryReadError) as info:
            binary.analyse(str(path))
        assert isinstance(info.value, SnapshotError) and isinstance(info.value, ValueError)
        found = fastelf.identify(str(path))
        assert found is None or found.build_id in ("", fastelf.file_build_id(os.path.realpath(real)))
    with pytest.raises(BinaryReadError):
        binary.load(str(tmp_path / "missing"))


SPAWNER = r"""
import sys, threading, time
def short():
    time.sleep(0.001)
open(sys.argv[1], "w").write("ready")
while True:
    ts = [threading.Thread(target=short) for _ in range(8)]
    for t in ts: t.start()
    for t in ts: t.join()
"""


def test_pause_stops_threads_born_while_attaching(once_python, tmp_path):
    """A target that keeps starting threads: while paused, every task it has is one we stopped."""
    from snapshot.process import procfs

    ready = str(tmp_path / "ready")
    p = subprocess.Popen([once_python.path, "-c", SPAWNER, ready], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.02)
        process = LiveProcess(p.pid)
        try:
            for _ in range(20):
                with process.paused() as stopped:
                    tasks = set(procfs.task_ids(p.pid))
                    assert tasks <= set(stopped), "tasks running during the pause: %s" % (tasks - set(stopped))
        finally:
            process.close()
        assert not pythons.stopped_or_traced(p.pid)
    finally:
        p.kill()
        p.wait()


def test_libpython_names_are_recognised_as_the_pattern_says():
    """Discovery's hand scan equals ``libpython(\\d)\\.(\\d+)[a-z]*\\.so`` searched anywhere in the name."""
    import random
    import re

    from snapshot.discovery import _libpython_version
    pattern = re.compile(r"libpython(\d)\.(\d+)[a-z]*\.so")
    names = ["libpython3.12.so.1.0", "libpython3.8d.so", "libpython2.7.so", "python3.12", "libpython3.so",
             "libpython3.10.a", "xlibpython3.11m.so.1", "libpythonlibpython3.9.so", "libpython3..so",
             "libpython31.2.so", "libpython3.12A.so", "libpython3.1"]
    chooser = random.Random(13)
    names += ["libpython" + "".join(chooser.choice("3.12.soabz9") for _ in range(chooser.randint(0, 10)))
              for _ in range(20000)]
    for name in names:
        match = pattern.search(name)
        assert _libpython_version(name) == ((int(match.group(1)), int(match.group(2))) if match else None), name
