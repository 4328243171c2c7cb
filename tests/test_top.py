"""``pyspy-repl top``: the full screen through a pseudo-terminal (rows, ?, L, R, sort keys, q, Ctrl-C),\nthe tables through a pipe, and the key and table logic on its own."""
from __future__ import annotations

import re
import signal
import sys
import time

import pytest

import pythons
from pythons import REPO, Target, run_tool, target_script, tool_env
from vtscreen import PtyCommand


@pytest.fixture(scope="module")
def interp():
    import conftest
    it = next((i for i in conftest.matrix() if i.id == pythons.CONSOLE_SCRIPT_INTERPRETER and i.available), None)
    if it is None:
        pytest.skip("%s (PYSPY_REPL_ONCE_ON) not available" % pythons.CONSOLE_SCRIPT_INTERPRETER)
    return it


ROW = re.compile(r"^ *(\d+\.\d\d)% +(\d+\.\d\d)% +(\S+) +(\S+)  (.+)$", re.M)
BUSY = re.compile(r"^busy_loop \(threads_mix\.py:(\d+)\)$")


def _rows(screen):
    return [m.group(5) for m in ROW.finditer(screen)]


def _busy_lines(screen):
    return [int(m.group(1)) for m in (BUSY.match(label) for label in _rows(screen)) if m]


def _samples(screen):
    m = re.search(r"Total Samples (\d+) \|", screen)
    return int(m.group(1)) if m else None


def _top_on_a_pty(interp, tmp_path):
    t = Target(interp.path, target_script("threads_mix.py"), ["600"], str(tmp_path))
    pythons.wait_for_threads(t.pid, 3)
    env = tool_env()
    env["TERM"] = "xterm-256color"
    term = PtyCommand([sys.executable, "-m", "repl.cli", "top", "--pid", str(t.pid)], rows=30, cols=150,
                      cwd=REPO, env=env)
    return t, term


def _stacks(pid):
    """The stuck tool's own Python stacks, for the failure message."""
    proc = run_tool(["dump", "--pid", str(pid)], timeout=60)
    return "pyspy-repl dump --pid %d:\n%s%s" % (pid, proc.stdout.decode("utf-8", "replace"),
                                                proc.stderr.decode("utf-8", "replace"))


def _left_running(t, term, key, reason="quit"):
    code, err = term.finish(60, stacks=_stacks)
    assert code == 0, err
    assert re.search(r"^top: \d+ samples, .*\(%s\)$" % reason, err, re.M), err
    assert term.screen.entered_alternate and term.screen.left_alternate  # the terminal is given back
    assert t.alive(), "the target died after %r" % key
    assert pythons.tracer_pid(t.pid) == 0
    assert pythons.stopped_or_traced(t.pid) == []


def test_top_full_screen_keys(interp, tmp_path):
    """The real CLI on a pty: rows of the target's functions, then ?, L, R, 2 and q as a user types them."""
    t, term = _top_on_a_pty(interp, tmp_path)
    try:
        screen = term.wait(lambda s: "busy_loop (threads_mix.py:" in s and "<module> (threads_mix.py:" in s
                           and s, what="rows for busy_loop and <module>")
        assert re.search(r"Total Samples \d+ \| GIL: [\d.]+% \| Active: [\d.]+% \| Threads: 3 ", screen)
        assert re.search(r"\*%Own +%Total +OwnTime +TotalTime +Function \(filename:line\)", screen)
        assert "Press ? for help, q to quit | aggregated by function" in screen
        assert len(_busy_lines(screen)) == 1  # by function: one row, whatever line it runs
        first = _samples(screen)
        # sampling goes on in the background: the screen refreshes with more samples, no key pressed
        term.wait(lambda s: (_samples(s) or 0) > first, what="a refresh with more samples than %d" % first)

        term.send("?")
        screen = term.wait(lambda s: "top keys" in s and s, what="the help overlay")
        for text in ("toggle line numbers", "reset the counts", "sort by %Own, %Total", "q Ctrl-C  quit"):
            assert text in screen
        term.send("?")
        term.wait(lambda s: "top keys" not in s and "busy_loop (" in s, what="the table without the help")

        term.send("L")
        # by line: busy_loop's two lines (the loop test and its body) as rows of their own
        screen = term.wait(lambda s: "aggregated by line" in s and len(set(_busy_lines(s))) >= 2 and s,
                           what="busy_loop on two lines")
        lines = _busy_lines(screen)
        assert len(lines) == len(set(lines))
        term.send("L")
        term.wait(lambda s: "aggregated by function" in s and len(_busy_lines(s)) == 1, what="by function again")

        before = term.wait(lambda s: (_samples(s) or 0) >= 300 and _samples(s), what="300 samples")
        term.send("R")
        after = term.wait(lambda s: _samples(s) is not None and _samples(s) < before and _samples(s),
                          what="the samples counted again from 0 (fewer than %d)" % before)
        assert after < before

        term.send("2")
        term.wait(lambda s: re.search(r"%Own +\*%Total", s), what="sorted by %Total")

        term.resize(12, 100)  # the screen follows the terminal's size: status on the last row
        term.wait(lambda s: s.splitlines()[-1].startswith(" Press ? for help") and "busy_loop (" in s,
                  what="the screen redrawn at 12x100")
        term.send("q")
        _left_running(t, term, "q")
    finally:
        term.close()
        t.stop()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_top_full_screen_ctrl_c_and_sigterm(interp, tmp_path, how):
    """Ctrl-C on the full screen is a key (the terminal is raw): it quits as q does.  SIGTERM
    ends sampling between two passes and closes the screen.  Either way the target runs on."""
    t, term = _top_on_a_pty(interp, tmp_path)
    try:
        term.wait(lambda s: "busy_loop (threads_mix.py:" in s, what="a busy_loop row")
        if how == "ctrl-c":
            term.send("\x03")
            _left_running(t, term, "Ctrl-C")
        else:
            term.proc.send_signal(signal.SIGTERM)
            _left_running(t, term, "SIGTERM", reason="interrupted")
    finally:
        term.close()
        t.stop()


def test_top_full_screen_closes_when_the_target_exits(interp):
    """A launched target that ends closes the screen by itself: the terminal is given back, exit 0."""
    env = tool_env()
    env["TERM"] = "xterm-256color"
    term = PtyCommand([sys.executable, "-m", "repl.cli", "top", "--", interp.path, target_script("threads_mix.py"),
                       "8"], cwd=REPO, env=env)
    try:
        code, err = term.finish(120, stacks=_stacks)
        assert code == 0, err
        assert "(target exited)" in err
        assert term.screen.entered_alternate and term.screen.left_alternate
        assert "busy_loop (threads_mix.py:" in term.screen.last_alternate  # the table was up to the end
    finally:
        term.close()


def test_top_in_a_pipe_prints_tables(interp):
    proc = run_tool(["top", "--rows", "5", "--", interp.path, target_script("threads_mix.py"), "4.6"], timeout=120,
                    prefix=[sys.executable, "-X", "importtime", "-m", "repl.cli"])
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr
    assert b"prompt_toolkit" not in proc.stderr  # the full screen's import is not paid in a pipe
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


def _labels(view, sstats):
    return [line.split("  ")[-1] for line in view.lines(sstats, 200, None)[4:]]


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
    view.next_interval(sstats)
    text = "\n".join(view.lines(sstats, 200, None))
    assert "Total Samples 3 |" in text
    assert _labels(view, sstats) == ["work (app.py:10)", "<module> (app.py:30)"]  # by function: one row for both
    assert view.lines(sstats, 200, None)[4].startswith(" 100.00%  100.00%     0.03s      0.03s  ")

    assert view.handle_key("?") == "redraw" and view.show_help
    assert view.handle_key("x") == "redraw" and not view.show_help  # any key closes the help
    assert view.handle_key("?") == "redraw" and view.handle_key("\x1b[A") == "redraw" and not view.show_help

    assert view.handle_key("L", sstats) == "redraw" and stats.line_numbers
    assert _labels(view, sstats) == [] and "Total Samples 0 |" in view.lines(sstats, 200, None)[1]
    for inner in (a, b, b):
        stats.add(_sample((inner, outer)))
    sstats = SamplerStats(passes=6, started=1.0, ended=3.0)
    view.next_interval(sstats)
    assert _labels(view, sstats) == ["work (app.py:12)", "work (app.py:10)", "<module> (app.py:30)"]
    assert "Total Samples 3 |" in view.lines(sstats, 200, None)[1]  # the passes since L

    assert view.handle_key("2") == "redraw" and "*%Total" in view.lines(sstats, 200, None)[3]
    assert view.handle_key("R", sstats) == "redraw"
    assert _labels(view, sstats) == [] and stats.line_numbers  # reset keeps the aggregation
    assert view.handle_key("q") == "quit" and view.handle_key("\x03") == "quit"
    assert view.handle_key("z") is None and view.handle_key("\x1b[A") is None


def test_top_screen_bindings_through_prompt_toolkit():
    """TopScreen's application on a pipe input and a dummy output: keys reach the view, q quits,
    and the end of sampling closes the application."""
    import threading
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from snapshot.model import Frame
    from snapshot.sampler import SamplerStats
    from repl.commands.top import TopStats, TopView
    from repl.commands.top_screen import TopScreen

    stats = TopStats()
    view = TopView(None, stats, 100.0, "title")
    sstats = SamplerStats(passes=2, started=1.0, ended=2.0)
    stats.add(_sample((Frame("work", "/x/app.py", 10), Frame("<module>", "/x/app.py", 30))))
    stats.add(_sample((Frame("work", "/x/app.py", 11), Frame("<module>", "/x/app.py", 30))))
    quits = []

    def wait(condition, what):
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.01)

    with create_pipe_input() as keys:
        screen = TopScreen(view, threading.Lock(), lambda: sstats, 1.0, on_quit=lambda: quits.append(1),
                           input=keys, output=DummyOutput())
        ui = threading.Thread(target=screen.run, daemon=True)
        ui.start()
        wait(lambda: screen.app.is_running, "the application runs")
        text = "".join(t for _, t in screen._table_fragments())
        assert "work (app.py:10)" in text and "Total Samples 2 |" in text
        keys.send_text("?")
        wait(lambda: view.show_help, "? shows the help")
        keys.send_text("?")
        wait(lambda: not view.show_help, "? hides it")
        keys.send_text("L")
        wait(lambda: stats.line_numbers, "L aggregates by line")
        assert "aggregated by line" in "".join(t for _, t in screen._status_fragments())
        stats.add(_sample((Frame("work", "/x/app.py", 10),)))
        stats.add(_sample((Frame("work", "/x/app.py", 11),)))
        assert [r for r in stats.total] == [("work", "/x/app.py", 10), ("work", "/x/app.py", 11)]
        keys.send_text("R")
        wait(lambda: not stats.total, "R forgets the counts")
        keys.send_text("3")
        wait(lambda: view.sort == 2, "3 sorts by OwnTime")
        keys.send_text("q")
        ui.join(30)
        assert not ui.is_alive() and quits == [1]

    # the end of sampling (here: at once) closes the application without a key
    with create_pipe_input() as keys:
        screen = TopScreen(view, threading.Lock(), lambda: sstats, 1.0, on_quit=lambda: quits.append(2),
                           input=keys, output=DummyOutput())
        ui = threading.Thread(target=screen.run, daemon=True)
        screen.finished.set()
        ui.start()
        ui.join(30)
        assert not ui.is_alive() and quits == [1]
