"""Ctrl-C in the REPL while a command pauses the target never leaves a thread stopped.

A busy many-thread target (tests/targets/heartbeat_target.py); the REPL runs
`dump --locals` and `refresh`, and Ctrl-C arrives at random moments during
them.  After each interrupt the target's threads are running and untraced
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
            for i in range(30):
                child.sendline(("dump --locals", "refresh")[i % 2])
                time.sleep(rng.uniform(0.0, 0.12))
                child.sendintr()
                child.expect(PROMPT, timeout=30)
                assert_running(t, hb, "REPL round %d after Ctrl-C (session still open)" % i)
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
