"""Fault injection: the tool killed or suspended at random moments never harms the target.

The tool runs ``dump``, ``dump --locals``, ``record -r 1000`` and REPL
commands (``-c``) against a busy target (tests/targets/heartbeat_target.py:
a spinning main thread whose counter a heartbeat thread writes out, and
sleeping threads) and gets SIGKILL, SIGINT, SIGTERM, SIGSTOP then SIGKILL, or
SIGTSTP (then SIGCONT) at a random moment.  After each round the target is
alive, no thread is stopped or traced, and the counter moves again.

The suite runs ``ROUNDS`` rounds; the long run is the ``soak`` marker
(deselected by default): ``python -m pytest tests/test_fault_injection.py -m soak``
(``PYSPY_REPL_SOAK_ROUNDS``, default 400).
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
from pythons import Target, target_script, tool_env
from test_pause_safety import assert_running

ROUNDS = 20
COMMANDS = [["dump"], ["dump", "--locals"], ["record", "-r", "1000", "-d", "3", "-o", os.devnull, "-f", "raw"],
            ["repl", "-c", "threads", "-c", "bt --all", "-c", "dump --locals"]]
#: Interrupted before any of the tool's code ran (site.py's .pth files, runpy): Python's own start-up.
PYTHON_START_UP = ("init_import_site: Failed to import the site module", "Could not import runpy module")
FAULTS = ["SIGKILL", "SIGINT", "SIGTERM", "SIGSTOP+SIGKILL", "SIGTSTP"]


def _argv(command, pid):
    if command[0] == "repl":
        return [sys.executable, "-m", "repl.cli", "--pid", str(pid)] + command[1:]
    return [sys.executable, "-m", "repl.cli"] + command + ["--pid", str(pid)]


def _inject(proc, fault, rng):
    if fault == "SIGSTOP+SIGKILL":
        proc.send_signal(signal.SIGSTOP)
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
    elif fault == "SIGTSTP":
        proc.send_signal(signal.SIGTSTP)
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGCONT)
    else:
        proc.send_signal(getattr(signal, fault))


def run_rounds(target, hb, rounds, seed):
    rng = random.Random(seed)
    harmed = []
    for n in range(rounds):
        command, fault = rng.choice(COMMANDS), rng.choice(FAULTS)
        proc = subprocess.Popen(_argv(command, target.pid), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=tool_env(), cwd=pythons.REPO)
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is None:
            _inject(proc, fault, rng)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        what = "round %d: %s, %s" % (n, " ".join(command), fault)
        if not any(m in err for m in PYTHON_START_UP):
            assert "Traceback" not in err, "%s: traceback\n%s" % (what, err[-2000:])
        assert_running(target, hb, what)
        if not target.alive():
            harmed.append(what)
    return harmed


@pytest.fixture
def busy(once_python, tmp_path):
    hb = str(tmp_path / "heartbeat")
    t = Target(once_python.path, target_script("heartbeat_target.py"), [hb, "--threads", "4"],
               workdir=str(tmp_path))
    try:
        t.wait_for_file(hb, 60)
        assert_running(t, hb, "before the test")
        yield t, hb
    finally:
        t.stop()


def test_faults_at_random_moments(busy):
    target, hb = busy
    assert run_rounds(target, hb, ROUNDS, seed=1) == []


@pytest.mark.soak
def test_faults_soak(busy):
    target, hb = busy
    rounds = int(os.environ.get("PYSPY_REPL_SOAK_ROUNDS", "400"))
    assert run_rounds(target, hb, rounds, seed=int(time.time())) == []
