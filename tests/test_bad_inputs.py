"""Bad inputs and hostile environments: one line, a true hint, a documented status, nothing left behind.

Each case runs the real CLI against a real (idle) target and checks the
message, the hint, the exit status, that the target is neither stopped nor
traced, that no temporary file was left in the output folder, and that an
output path that was refused is unchanged.  Also: output that goes to
devices, FIFOs, symlinks and standard output is written into them (never
replaced), a write that fails at the end saves a fallback file, standard
output that is closed, full or ASCII-only, and Ctrl-C at random moments of
start-up.

Run:  python -m pytest tests/test_bad_inputs.py
"""
from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time

import pytest

import pythons
from pythons import REPO, run_tool, tool_env

IDLE_TARGET = ("import threading, time\n"
               "def w\u00f6rk():\n    text = 'h\u00e9llo \u2603'\n    time.sleep(3600)\n"
               "threading.Thread(target=w\u00f6rk, name='thr\u00ebad-\u2603', daemon=True).start()\n"
               "time.sleep(3600)\n")


@pytest.fixture(scope="module")
def target(once_python):
    proc = subprocess.Popen([once_python.path, "-c", IDLE_TARGET], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(os.listdir("/proc/%d/task" % proc.pid)) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    yield proc
    proc.kill()
    proc.wait()


def _lines(text: str):
    return [l for l in text.splitlines() if l.strip()]


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith((".tmp", ".probe")))


# (args after the subcommand, message regex, hint regex, status)
TABLE = [
    (["record", "-r", "nan"], r"--rate.*not a finite number: 'nan'", None, 2),
    (["record", "-r", "inf"], r"--rate.*not a finite number: 'inf'", None, 2),
    (["record", "-d", "nan"], r"--duration.*not a finite number", None, 2),
    (["record", "-d", "-1"], r"--duration must be positive", None, 2),
    (["record", "--flush-interval", "nan"], r"--flush-interval.*not a finite number", None, 2),
    (["top", "--delay", "inf"], r"--delay.*not a finite number", None, 2),
    (["record", "-o", "{tmp}/missing/x.svg"], r"the folder .*/missing does not exist", r"mkdir -p", 10),
    (["record", "-o", "{tmp}"], r"it is a directory", r"give a file name inside it", 10),
    (["record", "-o", "/proc/pyspy-repl-test.svg"], r"cannot write /proc/pyspy-repl-test.svg", r"-o FILE", 10),
    (["dump", "--pid", "2147483648"], r"no process with pid 2147483648", r"ps", 3),
    (["dump", "--pid", "99999999999999999999"], r"no process with pid", r"ps", 3),
]


@pytest.mark.parametrize("args,message,hint,status", TABLE, ids=[" ".join(c[0]) for c in TABLE])
def test_bad_input(target, tmp_path, args, message, hint, status):
    import re
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] in ("record", "top") and "--pid" not in args:
        args += ["--pid", str(target.pid), "-d" if "-d" not in args else "--idle", "1"] if "-d" not in args \
            else ["--pid", str(target.pid)]
    before = sorted(os.listdir(str(tmp_path)))
    t0 = time.monotonic()
    r = run_tool(args, timeout=60)
    elapsed = time.monotonic() - t0
    err = r.stderr.decode("utf-8", "replace")
    lines = _lines(err)
    assert r.returncode == status, (args, r.returncode, err)
    assert "Traceback" not in err, err
    assert re.search(message, lines[0]), (lines, message)
    if hint:
        assert len(lines) == 2 and lines[1].strip().startswith("hint:") and re.search(hint, lines[1]), lines
    assert elapsed < 30, "a refused input should not sample first (%.1fs)" % elapsed
    assert sorted(os.listdir(str(tmp_path))) == before, "something was left behind"
    assert pythons.stopped_or_traced(target.pid) == []
    assert target.poll() is None


def _record(target, out, *extra, **kw):
    return run_tool(["record", "--pid", target.pid, "-d", "0.3", "--idle", "-o", out] + list(extra),
                    timeout=60, **kw)


@pytest.mark.skipif(os.geteuid() != 0, reason="replacing a device node needs root; the bug needs root too")
@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_devices_are_written_into_never_replaced(target, device, tmp_path):
    before = os.stat(device)
    r = _record(target, device, "-f", "raw", cwd=str(tmp_path)) if False else run_tool(
        ["record", "--pid", target.pid, "-d", "0.3", "--idle", "-f", "raw", "-o", device], timeout=60,
        cwd=str(tmp_path)) if False else subprocess.run(
        [sys.executable, "-m", "repl.cli", "record", "--pid", str(target.pid), "-d", "0.3", "--idle", "-f", "raw",
         "-o", device], capture_output=True, timeout=60, cwd=str(tmp_path), env=_env())
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev, "%s was replaced" % device
    err = r.stderr.decode()
    assert "Traceback" not in err
    if device == "/dev/full":
        assert r.returncode == 10, err
        lines = _lines(err)
        assert len(lines) == 1 and "No space left on device" in lines[0] and "instead" in lines[0], lines
        saved = lines[0].split("profile to ")[1].split(" instead")[0]
        assert os.path.getsize(saved) > 0 and "w\u00f6rk" in open(saved, encoding="utf-8").read()
    else:
        assert r.returncode == 0, err


def _env():
    env = tool_env()
    env["PYTHONPATH"] = REPO
    return env


def test_symlink_fifo_and_stdout(target, tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    r = _record(target, link, "-f", "raw")
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and "w\u00f6rk" in real.read_text(encoding="utf-8")
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    r = _record(target, fifo, "-f", "raw")
    data = reader.communicate(timeout=30)[0].decode("utf-8")
    assert r.returncode == 0 and "w\u00f6rk" in data and stat.S_ISFIFO(os.lstat(str(fifo)).st_mode)
    for out in ("-", "/dev/stdout"):
        r = _record(target, out, "-f", "raw")
        assert r.returncode == 0, r.stderr
        assert "w\u00f6rk" in r.stdout.decode("utf-8"), (out, r.stdout[:300])
    assert _leftovers(str(tmp_path)) == []


def test_output_path_checked_before_sampling(target, tmp_path):
    t0 = time.monotonic()
    r = run_tool(["record", "--pid", target.pid, "-d", "300", "-o", tmp_path / "no" / "x.svg"], timeout=200)
    assert r.returncode == 10 and time.monotonic() - t0 < 150


@pytest.mark.parametrize("case", ["closed", "full", "ascii", "ascii-json"])
def test_standard_output_trouble(target, case):
    env = _env()
    args = [sys.executable, "-m", "repl.cli", "dump", "--pid", str(target.pid), "--locals"]
    kw = {}
    if case == "closed":
        kw["stdout"] = None
        args = ["sh", "-c", '"$@" >&-', "sh"] + args
    elif case == "full":
        kw["stdout"] = open("/dev/full", "w")
    else:
        env["PYTHONIOENCODING"] = "ascii"
        if case == "ascii-json":
            args.append("--json")
        kw["stdout"] = subprocess.PIPE
    r = subprocess.run(args, stderr=subprocess.PIPE, env=env, timeout=60, cwd=REPO, **kw)
    err = r.stderr.decode()
    assert "Traceback" not in err, err
    if case in ("closed", "full"):
        lines = _lines(err)
        assert r.returncode == 10 and len(lines) == 2 and "cannot write to standard output" in lines[0], err
        assert lines[1].strip().startswith("hint:")
    else:
        assert r.returncode == 0, err
        out = r.stdout.decode("ascii")
        assert ("thr\\xebad" in out) if case == "ascii" else ("thr\\u00ebad" in out), out[:500]
        if case == "ascii-json":
            import json
            assert any(t["thread_name"] == "thr\u00ebad-\u2603" for t in json.loads(out))


def test_ctrl_c_during_start_up(target):
    """SIGINT at random moments of start-up and attach: never a traceback, never ignored.

    The tool runs with ``-S`` (its dependencies on PYTHONPATH) so the window is the tool's own
    imports and attach, not site.py's .pth files (Python's own start-up, before any of our code)."""
    import site
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([REPO] + site.getsitepackages())
    rng = random.Random(12)
    outcomes = {}
    # the interpreter's own start-up (before runpy runs any of our code) is not ours to guard
    t0 = time.monotonic()
    for _ in range(3):
        subprocess.run([sys.executable, "-S", "-c", "import runpy, importlib, warnings"], env=env, check=True)
    python_start = 2 * (time.monotonic() - t0) / 3
    for _ in range(25):
        p = subprocess.Popen([sys.executable, "-S", "-m", "repl.cli", "record", "--pid", str(target.pid), "-d", "20",
                              "--idle", "-o", os.devnull], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             cwd=REPO)
        time.sleep(python_start + rng.uniform(0.0, 0.5))
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out, err = p.communicate(timeout=60)
        text = err.decode()
        assert "Traceback" not in text, text
        assert time.monotonic() - t0 < 10, "the interrupt was ignored: %s" % text
        assert p.returncode in (130, 0, -signal.SIGINT), (p.returncode, text)
        if p.returncode == 0:
            assert "(interrupted)" in text, text
        outcomes[p.returncode] = outcomes.get(p.returncode, 0) + 1
    assert pythons.stopped_or_traced(target.pid) == []


def test_repl_rejects_non_finite_and_bad_paths(target, tmp_path):
    lines = ["sample -r nan", "sample -d inf", "record start -o %s/a.svg -r nan" % tmp_path,
             "record start -o %s/none/a.svg" % tmp_path, "record start -o %s -d 1" % tmp_path]
    args = ["--pid", target.pid]
    for line in lines:
        args += ["-c", line]
    t0 = time.monotonic()
    r = run_tool(args, timeout=60)
    err = r.stderr.decode()
    assert time.monotonic() - t0 < 30 and "Traceback" not in err, err
    assert err.count("not a finite number") == 3, err
    assert "the folder %s/none does not exist" % tmp_path in err and "it is a directory" in err, err
    assert os.listdir(str(tmp_path)) == []
    assert pythons.stopped_or_traced(target.pid) == []


def test_folder_removed_while_recording_saves_a_fallback(target, tmp_path):
    import shutil
    sub = tmp_path / "sub"
    sub.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "repl.cli", "record", "--pid", str(target.pid), "-d", "2", "--idle",
                             "-f", "raw", "-o", str(sub / "p.txt")], cwd=str(work), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30     # sampling has begun once the tool is seen pausing the target
    while pythons.tracer_pid(target.pid) != proc.pid and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.0005)
    shutil.rmtree(str(sub))
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    lines = _lines(text)
    assert proc.returncode == 10 and "Traceback" not in text, text
    assert len(lines) == 1 and "saved the raw profile to" in lines[0], lines
    saved = lines[0].split("profile to ")[1].split(" instead")[0]
    assert os.path.dirname(saved) == str(work) and "w\u00f6rk" in open(saved, encoding="utf-8").read()
