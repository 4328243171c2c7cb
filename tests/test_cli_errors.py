"""`dump` error paths: one line plus a hint on stderr, a non-zero exit status, never a traceback.

    no such pid | not a Python process (names the program) | permission denied (tool run
    as nobody against a root-owned target) | unsupported version (pyenv 3.7 / 3.6) |
    the target exiting while it is read (a clean error or a valid dump, every time)

Run:  python -m pytest tests/test_cli_errors.py
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

import pythons
from pythons import run_tool


def _lines(b: bytes):
    return [l for l in b.decode("utf-8", "replace").splitlines() if l.strip()]


def assert_clean_error(r: subprocess.CompletedProcess, what: str):
    """Non-zero exit, an error line plus at most a hint line, no traceback. Returns the text."""
    err = r.stderr.decode("utf-8", "replace")
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode not in (0, None), "%s: exit status 0\nstdout: %s\nstderr: %s" % (what, out[-500:], err)
    assert "Traceback" not in err and "Traceback" not in out, "%s: traceback printed:\n%s" % (what, err[-3000:])
    lines = _lines(r.stderr)
    assert lines, "%s: nothing on stderr (exit %d)" % (what, r.returncode)
    assert len(lines) <= 2, "%s: expected one error line plus a hint, got %d lines:\n%s" % (what, len(lines), err)
    assert "error" in lines[0].lower(), "%s: first line is not an error message: %r" % (what, lines[0])
    assert len(lines) == 2 and "hint" in lines[1].lower(), "%s: no hint line after the error:\n%s" % (what, err)
    assert not out.strip(), "%s: stdout not empty on error: %r" % (what, out[:300])
    return err


def unused_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as fh:
        pid = int(fh.read()) - 1
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


@pytest.fixture
def spawn():
    procs = []

    def start(cmd, **kw):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _wait_started(pid, marker=b"python", timeout=10.0):
    """Until exec is done and the interpreter had a moment to start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                if marker in fh.read():
                    break
        except OSError:
            pass
        time.sleep(0.01)
    time.sleep(0.3)


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_no_such_pid(json_flag):
    pid = unused_pid()
    r = run_tool(["dump", "--pid", pid] + json_flag)
    err = assert_clean_error(r, "dump --pid %d (no such process)" % pid)
    assert str(pid) in err, "the message should name the pid %d:\n%s" % (pid, err)
    assert re.search(r"not found|no such|does not exist|doesn't exist|no process", err, re.I), err


def test_not_a_python_process(spawn):
    p = spawn(["sleep", "100"])
    _wait_started(p.pid, b"sleep", timeout=5)
    r = run_tool(["dump", "--pid", p.pid])
    err = assert_clean_error(r, "dump of `sleep 100`")
    assert "sleep" in err, "the message should name the program (sleep):\n%s" % err
    assert re.search(r"not (a )?python", err, re.I), err
    assert p.poll() is None, "the tool killed `sleep`"
    assert pythons.stopped_or_traced(p.pid) == []


# ---------------------------------------------------------------- permission denied
def _nobody_runner(request_cleanup):
    """(argv prefix, env) to run the tool as uid 65534 with a Python that can import it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start a target the unprivileged user may not trace")
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("setpriv (util-linux) not found")
    # The test interpreter may live under /root (not readable by nobody): use a world-readable
    # one and copy the pure-Python dependencies the tool imports into a world-readable dir.
    py = None
    for cand in ("/usr/bin/python3.11", "/usr/bin/python3", sys.executable):
        if cand and os.path.exists(cand) and not cand.startswith("/root/"):
            py = cand
            break
    if py is None:
        pytest.skip("no interpreter outside /root for the unprivileged user")
    # pytest's tmp_path sits under a 0700 directory: use a world-readable one
    import pathlib
    import tempfile
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="pyspy-repl-nobody-"))
    request_cleanup.append(str(tmp_path))
    deps = tmp_path / "deps"
    deps.mkdir()
    for mod in ("construct", "elftools", "psutil", "capstone", "prompt_toolkit", "wcwidth"):
        try:
            m = __import__(mod)
        except ImportError:
            continue
        src = os.path.dirname(m.__file__)
        shutil.copytree(src, str(deps / os.path.basename(src)),
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))
    os.chmod(str(tmp_path), 0o755)
    for root, dirs, files in os.walk(str(tmp_path)):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent",
           "PYTHONPATH": "%s:%s" % (pythons.REPO, deps), "PYTHONDONTWRITEBYTECODE": "1"}
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", py, "-m", "repl.cli"]
    probe = subprocess.run(prefix[:5] + ["-c", "import repl.cli, snapshot, construct, elftools"], env=env, capture_output=True,
                           cwd="/", timeout=60)
    if probe.returncode != 0:
        pytest.skip("the unprivileged user cannot import the tool with %s: %s" % (
            py, probe.stderr.decode()[-300:]))
    return prefix, env


@pytest.fixture
def cleanup_dirs():
    dirs = []
    yield dirs
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def test_permission_denied(spawn, cleanup_dirs, once_python):
    prefix, env = _nobody_runner(cleanup_dirs)
    interp = once_python
    p = spawn([interp.path, "-c", "import time, threading\n"
               "threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
               "time.sleep(100)"])
    _wait_started(p.pid)
    r = subprocess.run(prefix + ["dump", "--pid", str(p.pid)], env=env, capture_output=True, cwd="/", timeout=120)
    err = assert_clean_error(r, "dump as nobody of a root-owned %s target" % interp.id)
    assert re.search(r"permission|not allowed|not permitted|denied", err, re.I), err
    assert re.search(r"root|sudo|ptrace_scope|SYS_PTRACE", err), "the hint should say how to get access:\n" + err
    assert p.poll() is None
    assert pythons.stopped_or_traced(p.pid) == []


# ---------------------------------------------------------------- unsupported versions
@pytest.mark.parametrize("minor", pythons.UNSUPPORTED_MINORS)
def test_unsupported_version(spawn, minor):
    interp = {i.minor: i for i in pythons.find_unsupported()}[minor]
    if interp.missing:
        pytest.skip("CPython %s not available: %s" % (minor, interp.missing))
    p = spawn([interp.path, "-c", "import time, threading\n"
               "threading.Thread(target=time.sleep, args=(100,)).start()\n"
               "time.sleep(100)"])
    _wait_started(p.pid)
    r = run_tool(["dump", "--pid", p.pid])
    err = assert_clean_error(r, "dump of a CPython %s target" % interp.version)
    assert re.search(r"unsupported|not supported", err, re.I), \
        "expected an 'unsupported version' error for CPython %s:\n%s" % (interp.version, err)
    assert minor in err, "the message should name the version %s:\n%s" % (minor, err)
    assert p.poll() is None
    assert pythons.stopped_or_traced(p.pid) == []


# ---------------------------------------------------------------- exit while read
EXITING_TARGET = r"""
import sys, threading, time
def worker(n):
    acc = []
    for i in range(200000):
        acc.append(i * n)
        if len(acc) > 1000:
            acc = []
for n in range(8):
    threading.Thread(target=worker, args=(n,), daemon=True).start()
time.sleep(float(sys.argv[1]))
"""


@pytest.mark.parametrize("with_json", [False, True], ids=["text", "json"])
def test_target_exits_while_read(spawn, with_json, once_python):
    interp = once_python
    outcomes = {"dump": 0, "error": 0}
    delays = [0.05, 0.15, 0.3, 0.45, 0.6, 0.8]
    for delay in delays:
        p = spawn([interp.path, "-c", EXITING_TARGET, str(delay)])
        deadline = time.monotonic() + 20
        n = 0
        while time.monotonic() < deadline:
            state = pythons.proc_state(p.pid)
            if state is None:
                break
            args = ["dump", "--pid", p.pid, "--locals"] + (["--json"] if with_json else [])
            r = run_tool(args, timeout=60)
            n += 1
            what = "dump #%d of a %s target exiting after %.2fs" % (n, interp.id, delay)
            if r.returncode == 0:
                outcomes["dump"] += 1
                err = r.stderr.decode("utf-8", "replace")
                assert "Traceback" not in err, "%s: traceback with exit 0:\n%s" % (what, err)
                out = r.stdout.decode("utf-8", "replace")
                if with_json:
                    data = json.loads(out)
                    assert isinstance(data, list)
                else:
                    assert out.startswith("Process %d: " % p.pid), "%s: odd output:\n%s" % (what, out[:500])
            else:
                outcomes["error"] += 1
                assert_clean_error(r, what)
            if state == "Z":
                break          # dumped a zombie once: reap below
        assert p.wait(20) == 0
        r = run_tool(["dump", "--pid", p.pid], timeout=60)
        assert_clean_error(r, "dump after the target exited and was reaped")
    assert outcomes["dump"] + outcomes["error"] >= len(delays)
