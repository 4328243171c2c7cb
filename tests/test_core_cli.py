"""`pyspy-repl dump --core`: real crashes on every interpreter, and bad input from the command line.

* every interpreter: tests/targets/crash_target.py dereferences NULL through
  ctypes (a real SIGSEGV, GIL held); ``dump --core`` shows the crashing
  thread with the GIL in ``crash_here`` at the crashing line, its locals, and
  the worker blocked in ``worker_waits``, as text and as JSON;
* bad input, each a one-line error plus a hint, a non-zero exit and no
  traceback: a file that is not a core, an executable given as the core, a
  truncated core, the core of a non-Python program (``sleep``), a core whose
  interpreter binary is gone (then found again with --lib-search-path or
  --executable), and one whose binary was rebuilt (build-id mismatch, both ids
  named).  The interpreter binary is a copy of Debian's static
  /usr/bin/python3.11, so it can be removed or patched after the crash.

Run:  python -m pytest tests/test_core_cli.py -k "3.12 or errors"
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from pythons import run_tool, target_script
from test_cli_errors import assert_clean_error
from test_core import kernel_cores_problem, seam_landed

DEBIAN_PYTHON = "/usr/bin/python3.11"


def _need_cores():
    problem = kernel_cores_problem()
    if problem:
        pytest.skip(problem)
    if not seam_landed():
        pytest.skip("Target does not take a Process yet (snapshot/process/live.py missing)")


def crash(python_path: str, workdir: str, mode: str = "--segv") -> dict:
    """Run crash_target.py until it crashes; its READY facts plus the core's path."""
    ready = os.path.join(workdir, "ready.json")
    proc = subprocess.run([python_path, target_script("crash_target.py"), ready, mode], cwd=workdir,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert proc.returncode < 0, "crash_target did not die by a signal (%s): %s" % (
        proc.returncode, proc.stderr.decode(errors="replace")[-2000:])
    with open(ready, encoding="utf-8") as fh:
        facts = json.load(fh)
    deadline = time.monotonic() + 30
    cores = []
    while not cores and time.monotonic() < deadline:
        cores = [os.path.join(workdir, n) for n in os.listdir(workdir) if n.startswith("core")]
        time.sleep(0.02)
    assert cores, "no core in %s after a crash" % workdir
    facts["core"] = cores[0]
    facts["signal"] = -proc.returncode
    return facts


# -- a real crash on every interpreter ------------------------------------------------------
def test_dump_core_of_a_segfault(python, tmp_path):
    _need_cores()
    facts = crash(python.path, str(tmp_path))
    lines = facts["lines"]
    r = run_tool(["dump", "--core", facts["core"], "--locals"], timeout=300)
    text = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    assert text.startswith("Process %d: " % facts["pid"]) and "crash_target.py" in text.splitlines()[0], text[:400]
    assert "Thread %d (active+gil): \"MainThread\"" % facts["pid"] in text, text
    assert "crash_here (crash_target.py:%d)" % lines["crash_here"] in text, text
    assert "payload: {'answer': 42, 'kind': '--segv'}" in text, text
    assert "worker_waits (crash_target.py:%d)" % lines["worker_waits"] in text, text
    assert "label: 'the worker'" in text, text

    r = run_tool(["dump", "--core", facts["core"], "--json"], timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    threads = {t["thread_name"]: t for t in json.loads(r.stdout)}
    assert set(threads) == {"MainThread", "waiting-worker"}
    main = threads["MainThread"]
    assert main["os_thread_id"] == facts["pid"] and main["owns_gil"] and main["active"]
    crash_frame = next(f for f in main["frames"] if f["name"] == "crash_here")
    assert crash_frame["line"] == lines["crash_here"]
    worker = threads["waiting-worker"]
    assert not worker["owns_gil"] and not worker["active"]
    names = [f["name"] for f in worker["frames"]]
    assert "worker_waits" in names and names[-1] == "Thread._bootstrap", names


def test_dump_core_of_an_abort(once_python, tmp_path):
    """os.abort() leaves the main thread in tgkill: it crashed running, so it is shown active."""
    problem = kernel_cores_problem()
    if problem:
        pytest.skip(problem)
    facts = crash(once_python.path, str(tmp_path), "--abort")
    from snapshot.process.core import CoreProcess
    with CoreProcess(facts["core"]) as process:
        states = {t.tid: t.state for t in process.threads()}
        assert process.signal == facts["signal"] == 6
        assert states.pop(facts["pid"]) == "R" and set(states.values()) == {"S"}, process.threads()
    if not seam_landed():
        pytest.skip("Target does not take a Process yet (snapshot/process/live.py missing)")
    r = run_tool(["dump", "--core", facts["core"]], timeout=300)
    text = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert "Thread %d (active+gil): \"MainThread\"" % facts["pid"] in text, text
    assert "crash_here (crash_target.py:%d)" % facts["lines"]["crash_here"] in text, text
    assert "(idle): \"waiting-worker\"" in text, text


# -- bad input -----------------------------------------------------------------------------------
def test_errors_not_a_core(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a core\n")
    err = assert_clean_error(run_tool(["dump", "--core", text]), "dump --core on a text file")
    assert "not a core file" in err
    err = assert_clean_error(run_tool(["dump", "--core", shutil.which("sleep")]), "dump --core on an executable")
    assert "not a core file" in err and "--executable" in err
    err = assert_clean_error(run_tool(["dump", "--core", tmp_path / "missing"]), "dump --core on no file")
    assert "no such core file" in err


@pytest.fixture(scope="module")
def python_copy(tmp_path_factory):
    """A crashed copy of Debian's static python3.11: {"dir", "exe", "original", "core", ...}."""
    _need_cores()
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        pytest.skip("%s is not installed (Debian's python3.11, a static interpreter that can be copied)"
                    % DEBIAN_PYTHON)
    root = str(tmp_path_factory.mktemp("python-copy"))
    exe = os.path.join(root, "bin", "python3.11")
    os.makedirs(os.path.dirname(exe))
    shutil.copy2(DEBIAN_PYTHON, exe)
    work = os.path.join(root, "work")
    os.makedirs(work)
    facts = crash(exe, work, "--abort")
    facts.update(dir=root, exe=exe, stash=os.path.join(root, "stash"))
    os.makedirs(facts["stash"])
    return facts


def test_errors_truncated_core(python_copy, tmp_path):
    with open(python_copy["core"], "rb") as fh:
        data = fh.read()
    cut = tmp_path / "core.cut"
    cut.write_bytes(data[:len(data) * 2 // 3])
    err = assert_clean_error(run_tool(["dump", "--core", cut]), "dump --core on a truncated core")
    assert "cut short" in err


def test_errors_truncated_gzip(python_copy, tmp_path):
    packed = tmp_path / "core.gz"
    with gzip.open(packed, "wb", compresslevel=1) as out:
        with open(python_copy["core"], "rb") as fh:
            out.write(fh.read())
    env_dir = tmp_path / "cache"
    from pythons import tool_env
    env = dict(tool_env(), XDG_CACHE_HOME=str(env_dir))
    r = run_tool(["dump", "--core", packed], env=env)
    assert r.returncode == 0 and b"crash_here" in r.stdout, r.stderr[-2000:]
    packed.write_bytes(packed.read_bytes()[:-5000])
    os.utime(packed, (1, 1))  # another size and mtime: not the cached copy
    err = assert_clean_error(run_tool(["dump", "--core", packed], env=env), "dump --core on a cut gzip core")
    assert "cut short" in err


def test_errors_core_of_sleep(tmp_path):
    _need_cores()
    from test_core_errors import SleepCore
    core = SleepCore(str(tmp_path)).core
    r = run_tool(["dump", "--core", core])
    err = assert_clean_error(r, "dump --core on the core of sleep")
    assert "not a Python process" in err and "sleepy" in err
    assert "pid" not in err.splitlines()[-1], "the hint should not ask for a pid of a core: %s" % err


def test_errors_missing_binary_then_found(python_copy):
    exe, stash = python_copy["exe"], python_copy["stash"]
    hidden = os.path.join(stash, "python3.11")
    os.rename(exe, hidden)
    try:
        r = run_tool(["dump", "--core", python_copy["core"]])
        err = assert_clean_error(r, "dump --core whose interpreter binary is gone")
        assert exe in err and "--lib-search-path" in err
        assert r.returncode == 9
        for extra in (["--lib-search-path", "/nonexistent" + os.pathsep + stash], ["--executable", hidden]):
            r = run_tool(["dump", "--core", python_copy["core"]] + extra)
            assert r.returncode == 0, (extra, r.stderr.decode(errors="replace"))
            assert b"crash_here (crash_target.py:%d)" % python_copy["lines"]["crash_here"] in r.stdout
    finally:
        os.rename(hidden, exe)


def test_errors_build_id_mismatch(python_copy):
    from snapshot import elf
    exe, stash = python_copy["exe"], python_copy["stash"]
    with open(exe, "rb") as fh:
        original = fh.read()
    want = elf.build_id(elf.bytes_reader(original))
    at = original.index(bytes.fromhex(want))
    patched = bytearray(original)
    patched[at] ^= 0xFF
    good = os.path.join(stash, "good")
    os.makedirs(good, exist_ok=True)
    shutil.copy2(exe, os.path.join(good, "python3.11"))
    try:
        with open(exe, "wb") as fh:
            fh.write(patched)
        have = elf.build_id(elf.bytes_reader(bytes(patched)))
        r = run_tool(["dump", "--core", python_copy["core"], "--json"])
        err = assert_clean_error(r, "dump --core whose interpreter was rebuilt")
        assert want in err and have in err, err
        r = run_tool(["dump", "--core", python_copy["core"], "--lib-search-path", good])
        assert r.returncode == 0 and b"crash_here" in r.stdout, r.stderr.decode(errors="replace")
    finally:
        with open(exe, "wb") as fh:
            fh.write(original)


# -- the REPL on a core ------------------------------------------------------------------------------
def test_repl_on_a_core(once_python, tmp_path):
    """`pyspy-repl --core CORE -c ...`: navigation and print work; live-only commands say why."""
    _need_cores()
    facts = crash(once_python.path, str(tmp_path))
    core = facts["core"]
    r = run_tool(["--core", core, "-c", "threads", "-c", "thread %d" % facts["pid"], "-c", "bt", "-c", "up",
                  "-c", "locals", "-c", "print payload['answer']"], timeout=300)
    out, err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (out[-3000:], err[-3000:])
    assert "waiting-worker" in out and "MainThread" in out, out
    assert "crash_here (crash_target.py:%d)" % facts["lines"]["crash_here"] in out, out
    assert "payload" in out and "42" in out.split("payload")[-1], out
    assert "exited" not in err, "a core never exits: %s" % err

    # a command that needs a running process says why, in one line, and fails
    r = run_tool(["--core", core, "-c", "top"], timeout=300)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0 and "core file" in err and "Traceback" not in err, err

    # a bad core opens no prompt: one error line and a hint
    r = run_tool(["--core", tmp_path / "ready.json", "-c", "threads"])
    assert_clean_error(r, "pyspy-repl --core on a JSON file")
