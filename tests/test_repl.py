"""The interactive REPL through a pseudo-terminal (pexpect), against live targets.

Navigate threads and frames, print nested values (compared with the target's
own repr()), a background recording while other commands run, Ctrl-C during
`sample` (the session survives), the target exiting mid-session, completion
and history.  Plus unit checks of the path parser, completion and the REPL
dispatch tables (the prompt's `watch`/`record` are not the CLI's), capability flags.
"""
from __future__ import annotations

import re
import sys
import time

import pytest

import pythons

pexpect = pytest.importorskip("pexpect")

PROMPT = r"\(pyspy pid \d+[^)]*\) "


@pytest.fixture(scope="module")
def target(python, tmp_path_factory):
    with pythons.repl_target(python, str(tmp_path_factory.mktemp("repl-pty-" + python.id))) as t:
        yield t


def spawn(pid, tmp_path, term="dumb", extra=()):
    env = pythons.tool_env()
    env.update(TERM=term, PROMPT_TOOLKIT_NO_CPR="1", XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(sys.executable, ["-m", "repl.cli", "--pid", str(pid)] + list(extra), env=env,
                          cwd=pythons.REPO, encoding="utf-8", timeout=30, dimensions=(50, 220))
    child.logfile_read = open(str(tmp_path / "pty.log"), "a", encoding="utf-8")
    child.expect(PROMPT)
    return child


def run(child, line, timeout=30):
    """Send a line, return the output up to the next prompt (escape codes removed)."""
    child.sendline(line)
    child.expect(PROMPT, timeout=timeout)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before).replace("\r", "")


def ask(child, line, pattern, timeout=30):
    """Send a line, wait for ``pattern`` in its output, then for the next prompt (any terminal)."""
    child.sendline(line)
    child.expect(pattern, timeout=timeout)
    match = child.match
    child.expect(PROMPT, timeout=timeout)
    return match


def quit(child):
    child.sendline("quit")
    child.expect(pexpect.EOF, timeout=20)
    child.close()
    return child.exitstatus


def test_navigate_and_print(target, tmp_path):
    values = target.truth["values"]
    child = spawn(target.pid, tmp_path)
    try:
        text = run(child, "threads")
        for name in ("worker-a", "worker-b", "busy", "MainThread"):
            assert name in text
        run(child, "thread worker-a")
        assert "worker-a #0 wait_here" in child.after
        text = run(child, "bt")
        assert re.search(r"> #0 +wait_here", text) and "#1   Handler.handle" in text
        for path in ("payload['nested']['a'][1]", "request.items", "request.meta[7]", "local_tuple",
                     "payload['list'][-1]"):
            assert run(child, "p " + path).strip().splitlines()[-1] == values[path], path
        run(child, "up")
        assert "#1 Handler.handle" in child.after
        assert run(child, "p request.parent.path").strip().splitlines()[-1] == values["request.parent.path"]
        assert run(child, "p GLOBAL_CONFIG['limits']").strip().splitlines()[-1] == values["GLOBAL_CONFIG['limits']"]
        run(child, "down")
        assert "#0 wait_here" in child.after
        text = run(child, "p request.nope")
        assert "error:" in text and "nope" in text          # one line, session goes on
        text = run(child, "frame 42")
        assert "error:" in text
        tid = target.truth["threads"]["worker-b"]["ident"]
        run(child, "thread %#x" % tid)
        assert "worker-b #0 idle_loop" in child.after
        assert "marker = ['idle', 3600]" in run(child, "locals")
        assert quit(child) == 0
    finally:
        child.close(force=True)


def test_ctrl_c_during_sample_and_background_record(target, tmp_path):
    child = spawn(target.pid, tmp_path, term="xterm-256color")
    out_file = str(tmp_path / "profile.svg")
    try:
        child.sendline("sample --rate 50")
        child.expect("hot_function", timeout=30)
        time.sleep(1.0)
        child.sendintr()
        child.expect(r"\(interrupted\)", timeout=20)
        child.expect(PROMPT)
        ask(child, "thread busy", r"\[thread 0x[0-9a-f]+ \(\d+\) busy\]")   # the session survived Ctrl-C
        ask(child, "record start -o %s --rate 100" % out_file, "recording pid %d" % target.pid)
        for _ in range(3):                                   # the prompt stays usable
            ask(child, "bt --fresh", r"#0 +hot_function")
            ask(child, "threads", r"worker-a")
            time.sleep(0.3)
        m = ask(child, "record status", r"recording pid \d+ .* (\d+) passes, (\d+) samples")
        assert int(m.group(2)) > 0
        ask(child, "record stop", "wrote %s \\(flamegraph\\)" % re.escape(out_file), timeout=60)
        with open(out_file, encoding="utf-8") as fh:
            svg = fh.read()
        assert "<svg" in svg[:1000]
        assert "hot_function" in svg
        assert quit(child) == 0
    finally:
        child.close(force=True)


def test_completion_and_history(target, tmp_path):
    child = spawn(target.pid, tmp_path, term="xterm-256color")
    try:
        ask(child, "thread worker-a", r"\[thread .* worker-a\]")
        child.send("p pay")
        time.sleep(0.3)
        child.send("\t")
        child.expect(r"pay(\x1b\[[0-9;?]*[A-Za-z])*load")   # completed (maybe drawn in two steps)
        child.sendline("")
        child.expect("'nested'")
        child.expect(PROMPT)
        child.send("threa\t")
        time.sleep(0.5)
        child.sendintr()                # Ctrl-C at the prompt clears the line, the session goes on
        ask(child, "frame", r"#0 wait_here")
        assert quit(child) == 0
    finally:
        child.close(force=True)
    history = tmp_path / "state" / "pyspy-repl" / "history"
    assert "thread worker-a" in history.read_text()


def test_target_exits_mid_session(python, tmp_path):
    with pythons.repl_target(python, str(tmp_path), "--no-busy") as t:
        child = spawn(t.pid, tmp_path)
        try:
            run(child, "thread worker-a")
            open(t.truth_path + ".exit", "w").close()
            t.proc.wait(10)
            text = run(child, "refresh")
            assert "exited" in text
            text = run(child, "bt")
            assert re.search(r"> #0 +wait_here", text)          # the last snapshot is kept
            assert "count = 5" in run(child, "locals")
            assert "exited" in child.after
            assert "error:" in run(child, "p payload")          # values are gone: one line
            assert quit(child) == 0
        finally:
            child.close(force=True)


# ---------------------------------------------------------------- no target needed
def test_path_parser():
    from repl.commands.inspect import Attr, Index, PathError, parse_path
    assert parse_path("payload['nested']['a'][1]") == ("payload", [Index("nested"), Index("a"), Index(1)])
    assert parse_path('self.items[-1] . x[0x10]["k"]') == ("self", [Attr("items"), Index(-1), Attr("x"),
                                                                    Index(16), Index("k")])
    for bad in ("1+2", "a[b]", "a.", "f()", "a[1", "a[b'x']", "__import__('os').system('x')"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_dispatch_tables_per_front_end():
    from repl import dispatch
    from repl.commands.hangwatch import HangWatchCommand
    from repl.commands.record import RecordCommand
    from repl.commands.record_bg import RecordReplCommand
    from repl.commands.watch_cmd import WatchReplCommand
    repl = dispatch.Dispatcher(dispatch.REPL)
    cli = dispatch.Dispatcher(dispatch.CLI)
    assert repl.command_class("watch") is WatchReplCommand
    assert repl.command_class("record") is RecordReplCommand
    assert cli.command_class("watch") is HangWatchCommand      # the CLI keeps its own
    assert cli.command_class("record") is RecordCommand
    assert cli.command_class("threads") is None                # prompt-only
    for name in ("threads", "thread", "bt", "where", "frame", "up", "down", "locals", "print", "p",
                 "sample", "dump", "refresh", "attach", "detach", "help", "quit", "exit", "top"):
        assert repl.command_class(name) is not None, name
    assert set(cli.names()) == {"dump", "record", "top", "watch", "save"}


def _offline_session(source):
    import io
    from repl.session import Session
    from snapshot.model import Frame, Local, Snapshot, ThreadStack
    frames = (Frame("f", "/x.py", 3, (Local("alpha", "1", 0, True),)), Frame("g", "/x.py", 9, ()))
    snap = Snapshot(1, "3.12.1", "/py", 0, (ThreadStack(0x10, 77, "MainThread", True, False, frames),))
    session = Session(1, out=io.StringIO(), err=io.StringIO())
    session._set_snapshot(snap)
    session.source = source
    return session


def test_capability_flags_say_why_in_one_line():
    from repl import dispatch
    d = dispatch.Dispatcher(dispatch.REPL)
    core = _offline_session(dispatch.CORE)
    assert d.run_line(core, "record start -o /tmp/x.svg") == 2
    assert core.err.getvalue() == ("error: `record` samples a running process over time; "
                                   "this session reads a core file\n")
    saved = _offline_session(dispatch.SNAPSHOT_FILE)
    assert d.run_line(saved, "save -o /tmp/x.pyspy") == 2
    assert "`save` does not work on a saved snapshot file (it needs a process or a core to read)" \
        in saved.err.getvalue()
    assert d.run_line(saved, "p alpha") == 0 and saved.out.getvalue() == "1\n"   # files carry memory
    # what works offline runs on the kept snapshot, without a process
    assert d.run_line(saved, "bt") == 0 and "#0   f (x.py:3)" in saved.out.getvalue()
    names = d.names(_offline_session(dispatch.DEBUGGER))
    assert "bt" in names and "print" in names and "sample" not in names and "record" not in names
    assert "top" not in d.names(core) and "top" in d.names(_offline_session(dispatch.LIVE))
    for name in d.names():
        cls = d.command_class(name)
        assert cls.unavailable(dispatch.LIVE) is None       # everything works on a running process


def test_run_line_for_a_debugger_front_end():
    import io
    from repl import dispatch
    session = _offline_session(dispatch.DEBUGGER)
    stream = io.StringIO()
    assert dispatch.run_line(session, "locals", out=stream) == 0
    assert "alpha = 1" in stream.getvalue()
    assert dispatch.run_line(session, "frame 7", out=stream) == 2
    assert "error: no frame 7 (frames 0..1)" in stream.getvalue()      # errors in the same stream
    assert session.out is not stream                                    # the session's own streams are back
    assert dispatch.run_line(session, "# only a comment", out=stream) == 0
    assert "thread" in session.dispatcher.completions(session, "thr")


def test_completion_candidates():
    from repl import dispatch
    from repl.session import Session
    from snapshot.model import Frame, Local, Snapshot, ThreadStack
    frames = (Frame("f", "/x.py", 3, (Local("alpha", "1", 0, True), Local("beta", "2", 0, False))),
              Frame("g", "/x.py", 9, ()))
    snap = Snapshot(1, "3.12.1", "/py", 0, (ThreadStack(0x10, 77, "MainThread", True, False, frames),))
    session = Session(1)
    session._set_snapshot(snap)
    d = dispatch.Dispatcher(dispatch.REPL)
    assert "threads" in d.completions(session, "thr")
    assert "--duration" in d.completions(session, "sample --du")
    assert set(d.completions(session, "thread ")) >= {"0x10", "77", "MainThread"}
    assert d.completions(session, "frame ") == ["0", "1"]
    assert d.completions(session, "p al") == ["alpha"]
    assert d.completions(session, "record st") == ["start", "status", "stop"]
    assert "bt" in d.completions(session, "watch b")
    assert "(pyspy pid 1 MainThread #0 f)" in session.prompt_text()


def test_no_color_and_help_scripted(tmp_path):
    r = pythons.run_tool(["-c", "help", "-c", "help print"])
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "print" in text and "sample" in text and "record" in text and "watch" in text
    assert "\x1b" not in text


def test_a_late_ctrl_c_neither_ends_the_repl_nor_cancels_the_next_command():
    """Ctrl-C is a signal: it can land after a command's own handler ran (while the prompt is set
    up, or liveness checked).  The REPL goes on, and the spent interrupt must not cancel the next
    line (the CI failure of test_repl_pause: `dump` answered "interrupted" at once)."""
    from repl import dispatch, interactive, interrupts
    session = _offline_session(dispatch.SNAPSHOT_FILE)
    lines = []

    class ScriptedPrompt:
        steps = ["late", "late-in-check", "bt", "eof"]

        def prompt(self, shown):
            step = self.steps.pop(0)
            if step == "late":                 # the signal handler ran: remembered, then raised
                interrupts._seen = True
                raise KeyboardInterrupt
            if step == "eof":
                raise EOFError
            if step == "late-in-check":
                interrupts._seen = True        # arrives while the user types; Enter follows
                session.check_alive = check_alive_interrupted_once
                return "frame 0"
            lines.append(step)
            return step

    real_check_alive = session.check_alive
    calls = []

    def check_alive_interrupted_once():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt            # between two steps of the loop, outside any command
        return real_check_alive()

    assert interactive._prompt_loop(session, dispatch.Dispatcher(dispatch.REPL), ScriptedPrompt(),
                                    lambda parts: parts) == 0
    err = session.err.getvalue()
    assert "interrupted" not in err, err
    assert "#0   f (x.py:3)" in session.out.getvalue()
    assert lines == ["bt"] and calls and not interrupts._seen
