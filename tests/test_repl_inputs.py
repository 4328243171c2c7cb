"""REPL input handling: long lines in linear time, ``thread #N``, indexing big lists, ``obj.__dict__``.

Run:  python -m pytest tests/test_repl_inputs.py -k "3.8 or 3.12 or 3.14"
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from pythons import run_tool, target_script


def test_long_line_is_split_in_linear_time():
    from repl.dispatch import split_line
    t0 = time.perf_counter()
    words = split_line("print " + "x" * 1_000_000)
    words2 = split_line("echo " + "a " * 200_000)
    elapsed = time.perf_counter() - t0
    assert words == ["print", "x" * 1_000_000] and len(words2) == 200_001
    assert elapsed < 10, "splitting 1.4 MB of input took %.1fs" % elapsed


@pytest.mark.parametrize("line,words", [
    ("thread #3", ["thread", "#3"]), ("frame #0", ["frame", "#0"]), ("dump # a comment", ["dump"]),
    ("# only a comment", []), ("p payload['key']", ["p", "payload['key']"]),
    ("record start -o '/tmp/a b.svg'", ["record", "start", "-o", "/tmp/a b.svg"]),
    ('echo "a \\"q\\" b" c\\ d', ["echo", 'a "q" b', "c d"]),
])
def test_split_line(line, words):
    from repl.dispatch import split_line
    assert split_line(line) == words


@pytest.fixture(scope="module")
def big(python, tmp_path_factory):
    ready = str(tmp_path_factory.mktemp("big-%s" % python.id) / "ready")
    proc = subprocess.Popen([python.path, target_script("big_values_target.py"), ready], start_new_session=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    yield proc
    proc.kill()
    proc.wait()


def _repl(proc, *commands):
    args = ["--pid", proc.pid]
    for c in ("thread holder",) + commands:
        args += ["-c", c]
    return run_tool(args, timeout=120)


def test_index_by_true_length(big):
    r = _repl(big, "p lst[-1]", "p lst[10000]", "p lst[99999]", "p tup[-100000]", "p tup[50000]")
    out = r.stdout.decode().split()
    assert r.returncode == 0, r.stderr.decode()
    assert out[-5:] == ["99999", "10000", "99999", "0", "50000"], r.stdout.decode()[-400:]
    r = _repl(big, "p lst[100000]")
    assert r.returncode != 0 and "index out of range (length 100000)" in r.stderr.decode()


def test_instance_dict(big):
    r = _repl(big, "p obj.__dict__", "p obj.__dict__['beta']")
    assert r.returncode == 0, r.stderr.decode()
    lines = [l for l in r.stdout.decode().splitlines() if l.strip()]
    assert "{'alpha': 1, 'beta': 'two'}" in lines, lines
    assert lines[-1] == "'two'", lines


def test_thread_by_position(big):
    r = run_tool(["--pid", big.pid, "-c", "threads", "-c", "thread #0", "-c", "bt"], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert "[thread" in r.stdout.decode(), r.stdout.decode()[-500:]
