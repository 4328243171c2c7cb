"""The target is never left stopped or traced, whatever happens to the tool.

A busy target (tests/targets/heartbeat_target.py) rewrites a heartbeat file with
a counter that its main thread advances.  After each scenario, every thread of
the target must be running (no 't'/'T' state, TracerPid 0) and the counter
must advance again:

* after a normal `dump`;
* after the tool is SIGKILLed while it holds the target paused (a helper process
  runs ``with snapshot.process.pause.paused(pid): time.sleep(30)`` and gets ``kill -9``);
* after SIGINT (Ctrl-C), SIGTERM or SIGTSTP (Ctrl-Z) to the tool while paused
  (helper): each is held until the target is detached, then acts; and to the
  real CLI at random moments;
* after an exception inside the ``with paused(...)`` block (the helper lives on).

Each helper scenario first checks that the pause is real (the counter stands
still and the threads are traced), so the test cannot pass vacuously.

Run:  python -m pytest tests/test_pause_safety.py
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

import pythons
from pythons import Target, run_tool, target_script, tool_env


def _counter(path):
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return -1


def _diagnose(pid):
    """Per-thread state, tracer, wchan and pending signals, for failure messages."""
    lines = []
    for tid, (state, tracer) in sorted(pythons.task_states(pid).items()):
        extra = ""
        try:
            with open("/proc/%d/task/%d/wchan" % (pid, tid)) as fh:
                extra += " wchan=%s" % fh.read().strip()
            with open("/proc/%d/task/%d/status" % (pid, tid)) as fh:
                extra += " " + " ".join(l.split()[0] + l.split()[1] for l in fh
                                        if l.startswith(("SigPnd", "ShdPnd")))
        except (OSError, IndexError):
            pass
        lines.append("    task %d state=%s tracer=%s%s" % (tid, state, tracer, extra))
    return "\n".join(lines)


def assert_running(target, hb, what, timeout=10.0):
    """The target's threads are neither stopped nor traced, and its counter moves."""
    t0 = time.monotonic()
    problems = pythons.stopped_or_traced(target.pid)
    while problems and time.monotonic() < t0 + timeout:
        time.sleep(0.02)
        problems = pythons.stopped_or_traced(target.pid)
    assert target.alive(), "%s: the target died:\n%s" % (what, target.log())
    assert not problems, "%s: target left stopped/traced for %.1fs: %s\n%s" % (
        what, timeout, problems, _diagnose(target.pid))
    settled = time.monotonic() - t0
    start = _counter(hb)
    t1 = time.monotonic()
    while time.monotonic() < t1 + timeout:
        time.sleep(0.05)
        if _counter(hb) > start:
            return
    pytest.fail("%s: the target's heartbeat counter is stuck at %d for %.1fs (threads running again "
                "after %.2fs; load average %s)\n%s" % (what, start, timeout, settled,
                                                         os.getloadavg(), _diagnose(target.pid)), pytrace=False)


def assert_paused(target, hb, tracer, what):
    """While paused: every thread is traced by ``tracer`` and the counter stands still."""
    states = pythons.task_states(target.pid)
    assert states, what
    not_traced = {tid: st for tid, st in states.items() if st[1] != tracer}
    assert not not_traced, "%s: threads not traced by the helper %d: %s" % (what, tracer, not_traced)
    a = _counter(hb)
    time.sleep(0.3)
    b = _counter(hb)
    assert a == b, "%s: the target kept counting while paused (%d -> %d)" % (what, a, b)


@pytest.fixture
def busy(once_python, tmp_path):
    interp = once_python
    hb = str(tmp_path / "heartbeat")
    t = Target(interp.path, target_script("heartbeat_target.py"), [hb, "--threads", "4"], workdir=str(tmp_path))
    try:
        t.wait_for_file(hb, 60)
        assert_running(t, hb, "before the test")
        yield t, hb
    finally:
        t.stop()


HELPER = r"""
import os, sys, time
from snapshot.process.pause import paused
pid, mode = int(sys.argv[1]), sys.argv[2]
if mode == "raise":
    try:
        with paused(pid):
            print("paused", flush=True)
            time.sleep(0.5)
            raise RuntimeError("boom inside the with-block")
    except RuntimeError:
        print("raised", flush=True)
    time.sleep(30)          # stay alive: a detach must not depend on our exit
else:
    if mode == "threaded":  # a tool with other threads: a signal may land on one of them
        import threading
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    hold = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    with paused(pid):
        print("paused", flush=True)
        time.sleep(hold)
    print("resumed", flush=True)
    time.sleep(30)
"""


def start_helper(pid, mode, hold=None):
    extra = [] if hold is None else [str(hold)]
    # Its own process group in the test's session: when the suite runs detached (a CI runner, a
    # shell that has exited) the suite's group is orphaned, and the kernel drops Ctrl-Z (SIGTSTP)
    # sent to a member of an orphaned group, so the stop the test waits for would never come.
    p = subprocess.Popen([sys.executable, "-c", HELPER, str(pid), mode] + extra, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=tool_env(), cwd=pythons.REPO, preexec_fn=os.setpgrp)
    line = p.stdout.readline().decode().strip()
    if line != "paused":
        p.kill()
        raise AssertionError("helper did not pause the target: %r\n%s" % (line, p.stderr.read().decode()[-2000:]))
    return p


def test_after_normal_dump(busy):
    t, hb = busy
    for args in (["dump", "--pid", t.pid], ["dump", "--pid", t.pid, "--locals", "--json"]):
        r = run_tool(args)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        assert_running(t, hb, "after `%s`" % " ".join(map(str, args)))


def test_after_sigkill_while_paused(busy):
    t, hb = busy
    helper = start_helper(t.pid, "sleep")
    try:
        assert_paused(t, hb, helper.pid, "helper paused the target")
        helper.send_signal(signal.SIGKILL)
        helper.wait(10)
    finally:
        if helper.poll() is None:
            helper.kill()
    assert_running(t, hb, "after kill -9 of the tool while paused")


@pytest.mark.parametrize("mode", ["sleep", "threaded"])
def test_sigint_while_paused_acts_after_the_detach(busy, mode):
    """Ctrl-C lands inside the pause: it is held, the target resumes first, then the tool dies of it."""
    t, hb = busy
    helper = start_helper(t.pid, mode, hold=2)
    try:
        assert_paused(t, hb, helper.pid, "helper paused the target")
        helper.send_signal(signal.SIGINT)
        rc = helper.wait(20)
        out = helper.stdout.read().decode()
        err = helper.stderr.read().decode()
        assert rc != 0 and "KeyboardInterrupt" in err, "the helper should die of Ctrl-C: rc=%s %s" % (rc, err[-500:])
        assert "resumed" not in out, "Ctrl-C should act as soon as the pause ends: %r" % out
    finally:
        if helper.poll() is None:
            helper.kill()
    assert_running(t, hb, "after Ctrl-C to the tool while paused")


def test_sigterm_while_paused_acts_after_the_detach(busy):
    t, hb = busy
    helper = start_helper(t.pid, "sleep", hold=2)
    try:
        assert_paused(t, hb, helper.pid, "helper paused the target")
        helper.send_signal(signal.SIGTERM)
        rc = helper.wait(20)
        assert rc == -signal.SIGTERM, "the helper should die of SIGTERM after the pause: rc=%s" % rc
    finally:
        if helper.poll() is None:
            helper.kill()
    assert_running(t, hb, "after SIGTERM to the tool while paused")


@pytest.mark.parametrize("mode", ["sleep", "threaded"])
def test_sigtstp_while_paused_never_leaves_the_target_stopped(busy, mode):
    """Ctrl-Z inside the pause: the tool stops only after the detach; the target runs while it is stopped."""
    t, hb = busy
    helper = start_helper(t.pid, mode, hold=2)
    try:
        assert_paused(t, hb, helper.pid, "helper paused the target")
        helper.send_signal(signal.SIGTSTP)
        deadline = time.monotonic() + 20
        while pythons.proc_state(helper.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pythons.proc_state(helper.pid) == "T", "the helper should stop (Ctrl-Z) after the pause"
        assert_running(t, hb, "while the tool is suspended by Ctrl-Z")
        helper.send_signal(signal.SIGCONT)
        assert helper.stdout.readline().decode().strip() == "resumed"
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait(10)


def test_after_exception_in_with_block(busy):
    t, hb = busy
    helper = start_helper(t.pid, "raise")
    try:
        assert_paused(t, hb, helper.pid, "helper paused the target")
        line = helper.stdout.readline().decode().strip()
        assert line == "raised", "helper: %r %s" % (line, helper.stderr.read().decode()[-1000:])
        assert helper.poll() is None, "the helper should still be alive"
        assert_running(t, hb, "after an exception in the paused block (tool still alive)")
    finally:
        helper.kill()
        helper.wait(10)


def test_cli_interrupted_at_random_moments(busy):
    """Ctrl-C / SIGTERM / SIGKILL to the real `dump` at random moments: the target always resumes."""
    t, hb = busy
    rng = random.Random(1234)
    cmd = [sys.executable, "-m", "repl.cli", "dump", "--pid", str(t.pid), "--locals"]
    for i in range(12):
        sig = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)[i % 3]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=tool_env(), cwd=pythons.REPO)
        time.sleep(rng.uniform(0.05, 0.6))
        if p.poll() is None:
            p.send_signal(sig)
        pythons.wait_or_kill(p, 20)
        assert_running(t, hb, "after %s to `dump` (round %d)" % (signal.Signals(sig).name, i))


def test_cli_suspended_at_random_moments(busy):
    """Ctrl-Z (SIGTSTP) to the real `dump` at random moments: while the tool is suspended the target runs."""
    t, hb = busy
    rng = random.Random(4321)
    cmd = [sys.executable, "-m", "repl.cli", "dump", "--pid", str(t.pid), "--locals"]
    for i in range(8):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=tool_env(), cwd=pythons.REPO)
        try:
            time.sleep(rng.uniform(0.05, 0.6))
            if p.poll() is None:
                p.send_signal(signal.SIGTSTP)
                deadline = time.monotonic() + 20
                while p.poll() is None and pythons.proc_state(p.pid) != "T" and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert_running(t, hb, "with `dump` suspended by SIGTSTP (round %d)" % i)
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
            p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert_running(t, hb, "after SIGTSTP+SIGCONT to `dump` (round %d)" % i)
