"""The REPL's scripted mode (``-c`` and stdin) against live targets of every interpreter.

The target (tests/targets/repl_target.py) writes the ``repr()`` of the values
we print; ``print`` must reproduce them from memory.  Exit codes: 0 when every
command worked, non-zero when any failed; no escape codes in the output.

Run:  python -m pytest tests/test_repl_scripted.py   (PYSPY_REPL_MATRIX=3.12-pyenv,... to narrow)
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import pytest

import pythons
from pythons import run_tool, target_script

ESC = re.compile(r"\x1b")


@pytest.fixture(scope="module")
def target(python, tmp_path_factory):
    with pythons.repl_target(python, str(tmp_path_factory.mktemp("repl-" + python.id))) as t:
        yield t


def repl(target, *commands, stdin=None, timeout=90):
    args = ["--pid", target.pid]
    for c in commands:
        args += ["-c", c]
    return run_tool(args, timeout=timeout, input=stdin.encode() if stdin is not None else None)


def out(result):
    return result.stdout.decode("utf-8", "replace")


def err(result):
    return result.stderr.decode("utf-8", "replace")


def test_print_matches_target_repr(target):
    values = target.truth["values"]
    paths = [p for p in values if not p.startswith(("GLOBAL", "handler", "len", "request.parent", "request.kind"))]
    commands = ["thread worker-a"] + ["print %s" % p for p in paths]
    r = repl(target, *commands)
    assert r.returncode == 0, err(r)
    lines = out(r).splitlines()[1:]
    assert lines == [values[p] for p in paths], "\n".join(
        "%s: got %r want %r" % (p, g, values[p]) for p, g in zip(paths, lines) if g != values[p])
    assert not ESC.search(out(r) + err(r))


def test_globals_builtins_and_outer_frames(target):
    values = target.truth["values"]
    r = repl(target, "thread worker-a", "up", "print request.parent.path", "print request.kind",
             "print GLOBAL_CONFIG['limits']", "print GLOBAL_NAME", "print handler.requests[0].path",
             "print -i len", "p count")
    assert r.returncode == 0, err(r)
    lines = out(r).splitlines()
    assert lines[0].startswith("[thread ") and "worker-a" in lines[0]
    assert lines[1].startswith("#1 Handler.handle (")
    rest = [l for l in lines[2:] if not l.startswith("    ")]   # skip the source line of `up`
    assert rest[0] == values["request.parent.path"]
    assert rest[1] == values["request.kind"]
    assert rest[2] == values["GLOBAL_CONFIG['limits']"]
    assert rest[3] == values["GLOBAL_NAME"]
    assert rest[4] == values["handler.requests[0].path"]
    assert "builtin" in rest[5] and "len" in rest[5]    # `-i`: type line for a builtin
    assert rest[7] == "5"


def test_depth_and_max_repr(target):
    r = repl(target, "thread worker-a", "p --depth 2 request.meta['deep']", "p --max-repr 10 payload")
    assert r.returncode == 0, err(r)
    lines = out(r).splitlines()
    assert lines[1] == "{'x': {'y': ...}}"
    assert lines[2] == target.truth["values"]["payload"][:7] + "..."


def test_threads_bt_frames(target):
    truth = target.truth["threads"]
    tid = truth["worker-b"]["ident"]
    r = repl(target, "threads", "thread %#x" % tid, "bt", "thread %d" % truth["worker-a"]["native_id"],
             "frame 1", "down", "up 3", "thread %d" % tid, "locals")
    assert r.returncode == 0, err(r)
    text = out(r)
    for name, info in truth.items():
        assert "%#x" % info["ident"] in text and name in text
    assert re.search(r"> #0 +idle_loop \(repl_target\.py:\d+\)", text)
    assert "#1 Handler.handle" in text and "#0 wait_here" in text
    # 2.7's threading mangles its private names (``self.__bootstrap_inner``)
    inner = "__bootstrap_inner" if target.truth["version"].startswith("2.") else "_bootstrap_inner"
    assert "#3 Thread.%s" % inner in text
    assert "marker = ['idle', 3600]" in text and "seconds = 3600" in text


def test_exit_code_and_one_line_errors(target):
    r = repl(target, "thread worker-a", "p nope", "p payload[", "frame 99", "thread no-such-thread",
             "bogus", "p 1+1", "locals")
    assert r.returncode != 0
    errors = [l for l in err(r).splitlines() if l.startswith("error:")]
    assert len(errors) == 6, err(r)
    assert "Traceback" not in err(r)
    assert "count = 5" in out(r)           # the session went on after the errors


def test_stdin_runbook(target):
    script = "# a runbook\n\nthread busy\nbt\nsample --duration 1 --rate 50\n"
    r = repl(target, stdin=script)
    assert r.returncode == 0, err(r)
    text = out(r)
    assert "hot_function" in text and re.search(r"\d+ samples \(\d+ passes", text)
    assert not ESC.search(text)
    r = repl(target, stdin="thread busy\np nothing_here\n")
    assert r.returncode != 0


def test_dump_and_watch_scripted(target):
    r = repl(target, "dump --locals", "watch --interval 0.1 --count 2 thread")
    assert r.returncode == 0, err(r)
    text = out(r)
    assert "worker-a" in text and "payload" in text
    assert text.count("Every 0.1s: thread") == 2


def test_record_in_script(target, tmp_path):
    path = str(tmp_path / "rec.txt")
    r = repl(target, "record start -o %s --rate 100" % path, "threads", "sample --duration 1",
             "record status", "record stop")
    assert r.returncode == 0, err(r)
    assert "wrote %s (raw)" % path in out(r)
    with open(path) as fh:
        collapsed = fh.read()
    assert "hot_function" in collapsed


def test_no_target_is_an_error(python):
    r = run_tool(["--pid", "999999999", "-c", "threads"])
    assert r.returncode != 0
    assert "error" in r.stderr.decode()


def test_exited_target_keeps_snapshot(python, tmp_path):
    with pythons.repl_target(python, str(tmp_path), "--no-busy") as t:
        proc = subprocess.Popen([sys.executable, "-m", "repl.cli", "--pid", str(t.pid)], cwd=pythons.REPO,
                                env=pythons.tool_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdin.write(b"thread worker-a\nbt\n")
        proc.stdin.flush()
        # the target may exit only once the REPL has shown its first bt (a condition, not a sleep:
        # on a loaded machine the REPL's attach can take longer than any fixed wait)
        seen = []
        reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, b"")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any(b"wait_here" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        open(t.truth_path + ".exit", "w").close()
        t.proc.wait(10)
        proc.stdin.write(b"refresh\nbt\nlocals\np payload\nthreads\n")
        proc.stdin.close()
        stderr = proc.stderr.read()
        proc.wait(60)
        reader.join(30)
        text, errors = b"".join(seen).decode(), stderr.decode()
        assert proc.returncode != 0
        assert "exited" in errors
        assert text.count("> #0   wait_here") == 2, text      # bt works on the kept snapshot
        assert "count = 5" in text                            # locals too
        assert "Traceback" not in errors


def test_start_command_and_inspect(python, tmp_path):
    truth_path = str(tmp_path / "truth.json")
    # `sample` first: it gives the freshly started target time to start its threads.
    r = run_tool(["-c", "sample --duration 1", "-c", "thread worker-b", "-c", "bt", "-c", "p seconds", "--",
                  python.path, target_script("repl_target.py"), truth_path, "--no-busy"], timeout=120)
    assert r.returncode == 0, err(r)
    assert "idle_loop" in out(r) and out(r).rstrip().endswith("3600")
    assert "stopped" in err(r)        # the session ends the process it started


def test_failed_attach_leaves_the_session_as_it_was(target):
    """`attach BAD_PID` fails with the reason; the prompt's target, thread and commands still work."""
    bad = 0x3FFFFFF0
    r = repl(target, "thread worker-a", "attach %d" % bad, "bt", "attach 1", "print request.path")
    text = out(r)
    assert r.returncode != 0  # the failed attaches are reported as failures
    assert "no process with pid %d" % bad in err(r), err(r)
    assert "request.path" not in err(r) and "not attached" not in err(r), err(r)
    assert target.truth["values"]["request.path"] in text, text
    assert "worker" in text, text  # bt still shows the selected thread
