"""Ctrl-C in the REPL while a command pauses the target never leaves a thread stopped.

A busy many-thread target (tests/targets/heartbeat_target.py); the REPL runs
`dump --locals` and `refresh`, and Ctrl-C arrives while the REPL holds the
target (its TracerPid is the REPL), at a random moment of the pause.  After each interrupt the target's threads are running and untraced
while the session lives, and the next pausing command still works (no
"not allowed to ptrace" from a thread we kept).

Run:  python -m pytest tests/test_repl_pause.py
"""
from __future__ import annotations

import random
import time

import pytest

import pythons
from pythons import Target, target_script
from test_pause_safety import assert_running
from test_repl import PROMPT, ask, quit, spawn

pexpect = pytest.importorskip("pexpect")


def test_ctrl_c_during_pausing_commands(once_python, tmp_path):
    hb = str(tmp_path / "heartbeat")
    t = Target(once_python.path, target_script("heartbeat_target.py"), [hb, "--threads", "40"], workdir=str(tmp_path))
    try:
        t.wait_for_file(hb, 60)
        child = None
        try:
            child = spawn(t.pid, tmp_path)
            rng = random.Random(77)
            hits = 0
            for i in range(30):
                child.sendline(("dump --locals", "refresh")[i % 2])
                # Ctrl-C inside the pause: as soon as the REPL traces the target, after a random delay.
                deadline = time.monotonic() + 10
                while pythons.tracer_pid(t.pid) != child.pid and time.monotonic() < deadline:
                    time.sleep(0.0005)
                hits += pythons.tracer_pid(t.pid) == child.pid
                time.sleep(rng.uniform(0.0, 0.01))
                child.sendintr()
                child.expect(PROMPT, timeout=30)
                assert_running(t, hb, "REPL round %d after Ctrl-C (session still open)" % i)
            assert hits >= 10, "the interrupts should mostly land inside a pause (%d of 30)" % hits
            ask(child, "dump", r"Thread \d+", timeout=30)
            assert quit(child) == 0
        except pexpect.ExceptionPexpect:
            log = (tmp_path / "pty.log").read_text(errors="replace")
            pytest.fail("the REPL session broke:\n%s" % log[-3000:], pytrace=False)
        finally:
            if child is not None:
                child.close(force=True)
    finally:
        t.stop()
