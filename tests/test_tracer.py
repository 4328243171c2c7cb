"""True messages where a pause cannot happen, and PID namespaces.

* another tracer holds the target (strace if installed, a Python child that
  PTRACE_SEIZEs every thread, a second pyspy-repl holding a pause): `dump`
  exits 4 with one line naming the tracer and a hint for ``--nonblocking``,
  no traceback, no "run as root"; ``--nonblocking`` still works;
* concurrent blocking dumps of one process all succeed (a short-lived tracer
  is waited for);
* a kernel thread and the tool's own pid get messages that say so;
* a target in its own PID namespace: OS thread ids are ours (host ids) and
  sleeping threads are idle.

Run:  python -m pytest tests/test_tracer.py
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import pythons
from pythons import run_tool, tool_env
from test_cli_errors import assert_clean_error

SLEEPERS = r"""
import sys, threading, time
def sleeper(n):
    value = n * 7
    time.sleep(1000)
for i in range(3):
    threading.Thread(target=sleeper, args=(i,), name="sleeper-%d" % i, daemon=True).start()
time.sleep(0.3)
open(sys.argv[1], "w").write("ready")
time.sleep(1000)
"""

SEIZER = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid = int(sys.argv[1])
for tid in os.listdir("/proc/%d/task" % pid):
    if libc.ptrace(0x4206, int(tid), None, None) != 0:
        sys.exit("seize failed: %d" % ctypes.get_errno())
print("seized", flush=True)
time.sleep(60)
"""

HOLDER = r"""
import sys, time
from snapshot.process.pause import paused
with paused(int(sys.argv[1])):
    print("paused", flush=True)
    time.sleep(60)
"""


def _wait(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def _start_sleepers(python_path, workdir, prefix=()):
    ready = os.path.join(workdir, "ready")
    p = subprocess.Popen(list(prefix) + [python_path, "-c", SLEEPERS, ready], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    _wait(lambda: os.path.exists(ready) or p.poll() is not None, 60, "the sleepers target")
    assert p.poll() is None, "sleepers target died: %s" % p.stderr.read().decode()[-2000:]
    return p


@pytest.fixture
def sleepers(once_python, tmp_path):
    p = _start_sleepers(once_python.path, str(tmp_path))
    yield p
    p.kill()
    p.wait()


def _stop(p):
    if p.poll() is None:
        p.kill()
    p.wait(10)


@pytest.fixture(params=["strace", "ptrace-child", "pyspy-repl"])
def traced(request, sleepers):
    """The sleepers target held by another tracer; yields (target, tracer pid, expected name)."""
    kind = request.param
    if kind == "strace":
        if not shutil.which("strace"):
            pytest.skip("strace is not installed")
        tracer = subprocess.Popen(["strace", "-f", "-p", str(sleepers.pid), "-o", os.devnull],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        expected = "strace"
    elif kind == "ptrace-child":
        tracer = subprocess.Popen([sys.executable, "-c", SEIZER, str(sleepers.pid)], stdout=subprocess.PIPE)
        assert tracer.stdout.readline().strip() == b"seized"
        expected = "python"
    else:
        tracer = subprocess.Popen([sys.executable, "-c", HOLDER, str(sleepers.pid)], stdout=subprocess.PIPE,
                                  env=tool_env(), cwd=pythons.REPO)
        assert tracer.stdout.readline().strip() == b"paused"
        expected = "python"
    try:
        _wait(lambda: pythons.tracer_pid(sleepers.pid) == tracer.pid, what="%s to attach" % kind)
        yield sleepers, tracer.pid, expected
    finally:
        _stop(tracer)


def test_tracer_attached_is_named(traced):
    target, tracer, expected = traced
    r = run_tool(["dump", "--pid", target.pid])
    err = assert_clean_error(r, "dump of a traced process")
    assert r.returncode == 4, err
    assert "already traced by pid %d" % tracer in err, err
    assert expected in err, err
    assert "--nonblocking" in err, err
    assert "root" not in err and "sudo" not in err, "a tracer is not a permission problem:\n" + err
    r = run_tool(["dump", "--pid", target.pid, "--nonblocking"])
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert b"sleeper-1" in r.stdout


def test_concurrent_blocking_dumps_all_succeed(sleepers):
    cmd = [sys.executable, "-m", "repl.cli", "dump", "--pid", str(sleepers.pid)]
    failures = []
    for round_ in range(4):
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tool_env(),
                                  cwd=pythons.REPO) for _ in range(4)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            if p.returncode != 0 or b"sleeper-2" not in out:
                failures.append((round_, p.returncode, err.decode()[-500:]))
    assert not failures, "%d of 16 concurrent dumps failed: %s" % (len(failures), failures[:3])
    assert not pythons.stopped_or_traced(sleepers.pid)


def _kernel_thread():
    for name in sorted(os.listdir("/proc"), key=lambda n: (len(n), n)):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        if len(fields) > 6 and int(fields[6]) & 0x00200000:
            return int(name)
    return None


def test_kernel_thread_is_named():
    pid = _kernel_thread()
    if pid is None:
        pytest.skip("no kernel thread visible in this pid namespace")
    r = run_tool(["dump", "--pid", pid])
    err = assert_clean_error(r, "dump of kernel thread %d" % pid)
    assert "kernel thread" in err and "exited" not in err, err


def test_own_pid_is_named():
    # exec keeps the shell's pid: the tool is asked to dump itself.
    r = subprocess.run(["sh", "-c", 'exec "$0" -m repl.cli dump --pid $$', sys.executable],
                       capture_output=True, timeout=60, cwd=pythons.REPO, env=tool_env())
    err = assert_clean_error(r, "dump of the tool's own pid")
    assert "itself" in err and "--nonblocking" in err, err
    assert "root" not in err, err


def _child_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as fh:
            kids = [int(x) for x in fh.read().split()]
    except OSError:
        return None
    return kids[0] if kids else None


def test_pid_namespace_maps_thread_ids(python, tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to start a target in its own PID namespace")
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare --pid not allowed here: %s" % probe.stderr.decode().strip())
    wrapper = _start_sleepers(python.path, str(tmp_path), prefix=("unshare", "--pid", "--fork", "--mount-proc"))
    try:
        _wait(lambda: _child_of(wrapper.pid) is not None, what="the namespaced python")
        pid = _child_of(wrapper.pid)
        host_tids = set(int(t) for t in os.listdir("/proc/%d/task" % pid))
        _wait(lambda: all(s[0] == "S" for s in pythons.task_states(pid).values()), what="sleeping threads")
        for extra in ([], ["--nonblocking"]):
            r = run_tool(["dump", "--pid", pid, "--json"] + extra)
            assert r.returncode == 0, r.stderr.decode()[-2000:]
            threads = json.loads(r.stdout)
            assert len(threads) == 4
            got = {t["os_thread_id"] for t in threads}
            assert got == host_tids, "os_thread_id should be our (host) ids %s, got %s" % (host_tids, got)
            assert not [t for t in threads if t["active"]], "sleeping threads shown active: %s" % threads
    finally:
        try:
            os.killpg(wrapper.pid, 9)
        except OSError:
            pass
        wrapper.wait(10)
