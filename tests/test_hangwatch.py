"""`pyspy-repl watch` and the `--hang-timeout` pytest plugin against real hangs.

Per interpreter of the matrix (tests/pythons.py): a two-lock deadlock, a
multiprocessing worker stuck on a queue while its parent joins it, threads
blocked in C calls (time.sleep, lock.acquire), and processes that ignore
SIGTERM.  The tool itself runs on the interpreter running the tests; the
targets run on the matrix interpreter.  Once: --stall firing before
--timeout, pass-through of a command that finishes in time, and the pytest
plugin on a hanging test.

Run:  python -m pytest tests/test_hangwatch.py     (PYSPY_REPL_MATRIX=3.12-pyenv,... to narrow)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import pythons
from pythons import run_tool, target_script, tool_env
from test_native_gdb import _norm, native_lib, physical  # noqa: F401 - native_lib is a fixture
from test_native_support import gdb_stacks

from snapshot.native.merge import is_eval_frame, is_plumbing

TIMEOUT = 2.0


def marker_line(script: str, marker: str) -> int:
    with open(target_script(script), encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if "# " + marker in line:
                return number
    raise AssertionError("no %s in %s" % (marker, script))


def watch(python, script, *args, timeout=TIMEOUT, extra=(), tmp_path=None, limit=60.0, input=None):
    """Run `pyspy-repl watch` on ``python script args``; returns (result, report dict, seconds)."""
    json_path = str(tmp_path / "report.json")
    report_path = str(tmp_path / "report.txt")
    cmd = ["watch", "--timeout", timeout, "--json", json_path, "--report", report_path, *extra,
           "--", python.path, target_script(script), *args]
    start = time.monotonic()
    result = run_tool(cmd, timeout=limit, input=input)
    seconds = time.monotonic() - start
    report = None
    if os.path.exists(json_path):
        with open(json_path, encoding="utf-8") as fh:
            report = json.load(fh)
    return result, report, seconds


def text(result) -> str:
    return result.stderr.decode("utf-8", "replace")


def threads_by_name(report):
    out = {}
    for proc in report["processes"]:
        for thread in proc["threads"]:
            out.setdefault(thread["thread_name"], []).append((proc, thread))
    return out


def assert_all_gone(report):
    deadline = time.monotonic() + 5
    pids = [p["pid"] for p in report["processes"]]
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError("processes left running after watch: %s" % alive)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] != "Z"


def summary_lines(stderr: str):
    part = stderr.split("Summary (", 1)
    assert len(part) == 2, stderr[-3000:]
    return part[1].splitlines()


# --------------------------------------------------------------------------
# per interpreter
# --------------------------------------------------------------------------
def test_two_lock_deadlock(python, tmp_path):
    result, report, seconds = watch(python, "hang_deadlock.py", tmp_path=tmp_path)
    err = text(result)
    assert result.returncode == 124, err[-3000:]
    assert b"deadlock target starting" in result.stdout          # output passed through
    line_a = marker_line("hang_deadlock.py", "DEADLOCK-A")
    line_b = marker_line("hang_deadlock.py", "DEADLOCK-B")
    summary = "\n".join(summary_lines(err))
    # the reader sees: which threads, which functions, which lines, and that they did not move
    for name, function, line in (("worker-a", "transfer_a_to_b", line_a), ("worker-b", "transfer_b_to_a", line_b)):
        pattern = r"'%s' STUCK +waiting in .*lock.* at %s \(hang_deadlock\.py:%d\)" % (name, function, line)
        assert re.search(pattern, summary), "%s not in summary:\n%s" % (pattern, err[-4000:])
    assert "did not move in 5 samples" in err
    assert "TIMEOUT after 2.0 s" in err
    with open(tmp_path / "report.txt", encoding="utf-8") as fh:
        assert "transfer_a_to_b (hang_deadlock.py:%d)" % line_a in fh.read()
    named = threads_by_name(report)
    for name, function, line in (("worker-a", "transfer_a_to_b", line_a), ("worker-b", "transfer_b_to_a", line_b)):
        (proc, thread), = named[name]
        assert thread["hang"]["stuck"] is True and thread["hang"]["moved"] is False
        assert thread["hang"]["waiting"]["kind"] == "lock"
        assert thread["hang"]["waiting"]["frame"]["name"] == function
        assert thread["hang"]["waiting"]["frame"]["line"] == line
        assert thread["frames"][0]["name"] == function
    (proc, main), = named["MainThread"]
    assert main["hang"]["waiting"]["kind"] == "join"
    assert main["hang"]["waiting"]["caller"]["line"] == marker_line("hang_deadlock.py", "MAIN-JOIN")
    assert proc["python_version"].startswith(python.minor + ".")
    assert proc["ppid"] and proc["command_line"][-1].endswith("hang_deadlock.py") and proc["elapsed"] >= TIMEOUT
    assert seconds < TIMEOUT + 15
    assert_all_gone(report)


def test_multiprocessing_worker_stuck_on_queue(python, tmp_path):
    ready = str(tmp_path / "worker.ready")
    result, report, _ = watch(python, "hang_mp_queue.py", ready, timeout=4.0, tmp_path=tmp_path)
    err = text(result)
    assert result.returncode == 124, err[-3000:]
    assert os.path.exists(ready), "the worker never started:\n" + err[-3000:]
    with open(ready) as fh:
        worker_pid = int(fh.read())
    pythons = [p for p in report["processes"] if p["python"]]
    by_pid = {p["pid"]: p for p in pythons}
    assert worker_pid in by_pid, "worker %d not in the report: %s" % (worker_pid, [p["pid"] for p in pythons])
    root = report["root_pid"]
    assert root in by_pid
    get_line = marker_line("hang_mp_queue.py", "WORKER-GET")
    join_line = marker_line("hang_mp_queue.py", "PARENT-JOIN")
    worker = by_pid[worker_pid]["threads"]
    waiting = [t["hang"]["waiting"] for t in worker if t["hang"]["waiting"]]
    assert any(w["caller"] and w["caller"]["name"] == "consume" and w["caller"]["line"] == get_line
               and w["kind"] in ("queue", "recv") for w in waiting), waiting
    parent = by_pid[root]["threads"]
    waiting = [t["hang"]["waiting"] for t in parent if t["hang"]["waiting"]]
    assert any(w["caller"] and w["caller"]["name"] == "main" and w["caller"]["line"] == join_line
               and w["kind"] == "join" for w in waiting), waiting
    # both processes are in the text report, with their headers
    assert re.search(r"Process %d \(parent \d+, running [\d.]+ s\)" % worker_pid, err)
    assert re.search(r"Process %d \(parent \d+, running [\d.]+ s\)" % root, err)
    assert "consume (hang_mp_queue.py:%d)" % get_line in err
    assert_all_gone(report)


def test_threads_blocked_in_c_calls(python, tmp_path):
    result, report, _ = watch(python, "hang_c_call.py", tmp_path=tmp_path)
    err = text(result)
    assert result.returncode == 124, err[-3000:]
    named = threads_by_name(report)
    (_, napper), = named["napper"]
    (_, grabber), = named["grabber"]
    assert napper["hang"]["stuck"] and grabber["hang"]["stuck"]
    # no Python frame for time.sleep / lock.acquire: the innermost frame is the caller
    assert napper["frames"][0]["name"] == "nap"
    assert napper["hang"]["waiting"]["kind"] == "sleep"
    assert napper["hang"]["waiting"]["frame"]["line"] == marker_line("hang_c_call.py", "C-SLEEP")
    assert grabber["hang"]["waiting"]["kind"] == "lock"
    assert grabber["hang"]["waiting"]["frame"]["line"] == marker_line("hang_c_call.py", "C-ACQUIRE")
    (_, main), = named["MainThread"]
    assert main["hang"]["waiting"]["kind"] == "condition"      # Event.wait -> Condition.wait
    assert main["hang"]["waiting"]["caller"]["line"] == marker_line("hang_c_call.py", "MAIN-WAIT")
    assert "waiting in sleep() at nap (hang_c_call.py:%d)" % marker_line("hang_c_call.py", "C-SLEEP") in err
    assert_all_gone(report)


def test_processes_ignoring_sigterm_are_killed(python, tmp_path):
    result, report, seconds = watch(python, "hang_ignore_term.py", timeout=TIMEOUT,
                                    extra=("--kill-after", "1"), tmp_path=tmp_path)
    err = text(result)
    assert result.returncode == 124, err[-3000:]
    pythons = [p for p in report["processes"] if p["python"]]
    assert len(pythons) == 2, [p["command_line"] for p in report["processes"]]
    assert "stubborn (hang_ignore_term.py:%d)" % marker_line("hang_ignore_term.py", "STUBBORN") in err
    assert re.search(r"2 ignored it and got SIGKILL", err), err[-2000:]
    assert seconds < TIMEOUT + 15
    assert_all_gone(report)


def _native_run(frames):
    """The frames of a JSON thread up to its first Python frame (innermost C frames)."""
    out = []
    for frame in frames:
        if not frame.get("is_native"):
            break
        out.append(frame)
    return out


class _GdbFrame:
    """A gdb frame as ``merge`` classifies it: its name and the file mapped at its pc."""

    def __init__(self, name, maps, pc):
        self.symbol = name
        self.module = next((path for start, end, path in maps if start <= pc < end), "")


def _executable_maps(pid):
    out = []
    with open("/proc/%d/maps" % pid) as fh:
        for line in fh:
            parts = line.split()
            if "x" in parts[1]:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                out.append((start, end, parts[5] if len(parts) > 5 else ""))
    return out


def _names_of(frame):
    """Every name the frame's library gives the function we named (aliases at its start:
    gdb may pick ``___pthread_mutex_lock`` where we pick ``pthread_mutex_lock``)."""
    from snapshot.native.elf import ElfFile
    from snapshot.native.symbols import load_symbols
    names = {_norm(frame["name"])}
    elf = ElfFile(frame["module"])
    try:
        table = load_symbols(elf, elf.build_id())
        found = table.address_of(frame["name"])
        if found:
            names.update(_norm(n) for n in table.aliases(found[0]))
    finally:
        elf.close()
    return names


def _is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def test_native_frames_of_a_hang_in_c_equal_gdb(python, native_lib, tmp_path):
    """``watch --native`` on threads blocked in C through ctypes (a mutex in the gcc-built test
    library, libc's nanosleep): each thread's report shows the C frames gdb shows for it.  The
    target ignores SIGTERM, so between watch's report and its SIGKILL gdb attaches to the same,
    still blocked, threads: the innermost C frames (those before the first Python frame) must be
    gdb's innermost physical frames (pcs, and names where gdb names them), and every C frame of
    the merged stack one of gdb's, in gdb's order."""
    if shutil.which("gdb") is None:
        pytest.skip("gdb not on PATH: no oracle for native frames")
    truth_path = str(tmp_path / "truth.json")
    json_path = str(tmp_path / "report.json")
    cmd = [sys.executable, "-m", "repl.cli", "watch", "--timeout", str(TIMEOUT), "--native", "--kill-after",
           "120", "--json", json_path, "--", python.path, target_script("hang_native.py"), truth_path, native_lib]
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=pythons.REPO,
                               env=tool_env(), start_new_session=True)
    target_pid = None
    try:
        report = None
        deadline = time.monotonic() + 90
        while report is None:
            assert watcher.poll() is None, watcher.communicate()[1].decode()[-3000:]
            assert time.monotonic() < deadline, "no report from watch --native"
            try:
                with open(json_path, encoding="utf-8") as fh:
                    report = json.load(fh)
            except (OSError, ValueError):
                time.sleep(0.05)
        with open(truth_path, encoding="utf-8") as fh:
            truth = json.load(fh)
        target_pid = truth["pid"]
        pythons.wait_blocked(target_pid, [int(t) for t in truth["threads"].values()])
        gdb = gdb_stacks(target_pid, str(tmp_path))
        maps = _executable_maps(target_pid)
    finally:
        try:
            if target_pid is not None:
                os.kill(target_pid, 9)
            else:   # no report: end watch and its command (one process group) now
                os.killpg(watcher.pid, 9)
        except OSError:
            pass
        try:
            out, err = watcher.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(watcher.pid, 9)
            out, err = watcher.communicate()
    err = err.decode("utf-8", "replace")
    assert watcher.returncode == 124, err[-3000:]
    assert report["native"] is True and "native (C) frames merged" in err
    (proc,) = [p for p in report["processes"] if p["python"]]
    threads = {t["os_thread_id"]: t for t in proc["threads"]}
    problems = []
    for role, tid in sorted(truth["threads"].items()):
        thread = threads[int(tid)]
        ours = [f for f in thread["frames"] if f.get("is_native")]
        innermost = _native_run(thread["frames"])
        theirs = physical(gdb[int(tid)])
        # gdb's frames the merged stack shows before its first Python frame: those up to the
        # first eval-loop frame, less the interpreter plumbing --native hides (merge.is_plumbing)
        expected = []
        for g in theirs:
            shown = _GdbFrame(_norm(g[2]), maps, g[0])
            if is_eval_frame(shown):
                break
            if not is_plumbing(shown):
                expected.append(g)
        if [f["address"] for f in innermost] != [g[0] for g in expected]:
            problems.append("%s: innermost C frames differ:\n  ours %s\n  gdb  %s" % (
                role, ["%x:%s" % (f["address"], f["name"]) for f in innermost],
                ["%x:%s" % (g[0], g[2]) for g in expected]))
            continue
        if not _is_subsequence([f["address"] for f in ours], [g[0] for g in theirs]):
            problems.append("%s: C frames not gdb's, in its order:\n  ours %s\n  gdb  %s" % (
                role, ["%x:%s" % (f["address"], f["name"]) for f in ours], ["%x:%s" % (g[0], g[2]) for g in theirs]))
        by_pc = {g[0]: g for g in theirs}
        for f in ours:
            assert f["module"].startswith("/"), f
            g = by_pc.get(f["address"])
            gdb_name = _norm(g[2]) if g else "??"
            if gdb_name == "??" or "+0x" in f["name"]:
                continue   # gdb cannot name it, or we only know the nearest symbol (not claimed)
            if gdb_name not in _names_of(f):
                problems.append("%s: 0x%x: gdb %s, ours %s" % (role, f["address"], g[2], f["name"]))
    assert not problems, "\n".join(problems)
    # where the Python side is: the ctypes call's caller, right after the C frames
    names = {role: [f["name"] for f in threads[int(tid)]["frames"]] for role, tid in truth["threads"].items()}
    assert any("mutex_lock" in n for n in names["mutex"]), names["mutex"]
    assert any("nanosleep" in n for n in names["nanosleep"]), names["nanosleep"]
    for role, function, marker in (("mutex", "block_on_mutex", "C-MUTEX"), ("nanosleep", "c_sleep", "C-NANOSLEEP")):
        python_frames = [f for f in threads[int(truth["threads"][role])]["frames"] if not f.get("is_native")]
        assert python_frames[0]["name"] == function, python_frames[:2]
        assert python_frames[0]["line"] == marker_line("hang_native.py", marker)
        assert threads[int(truth["threads"][role])]["hang"]["stuck"] is True
    assert "%s (hang_native.py:%d)" % ("block_on_mutex", marker_line("hang_native.py", "C-MUTEX")) in err


# --------------------------------------------------------------------------
# once
# --------------------------------------------------------------------------
class _Self:
    """The interpreter running the tests, as a matrix-like entry."""
    path = sys.executable
    minor = "%d.%d" % sys.version_info[:2]


def test_stall_fires_before_timeout(tmp_path):
    result, report, seconds = watch(_Self, "hang_c_call.py", timeout=60, extra=("--stall", "1.5"),
                                    tmp_path=tmp_path)
    err = text(result)
    assert result.returncode == 124, err[-3000:]
    assert "STALL: no Python stack in the process tree changed for 1.5 s" in err
    assert report["reason"] == "stall"
    assert seconds < 20, seconds
    assert_all_gone(report)


def test_stall_does_not_fire_on_a_busy_process(tmp_path):
    code = ("import time\nend = time.time() + 3\nwhile time.time() < end:\n"
            "    sum(i * i for i in range(1000))\nprint('done')\n")
    result = run_tool(["watch", "--timeout", "30", "--stall", "1", "--", sys.executable, "-c", code], timeout=60)
    assert result.returncode == 0, text(result)[-3000:]
    assert result.stdout == b"done\n" and result.stderr == b""


def test_command_finishing_in_time_is_untouched(tmp_path):
    cmd = [sys.executable, target_script("hang_passthrough.py"), "7"]
    direct = subprocess.run(cmd, input=b"hello\n", capture_output=True, timeout=60)
    result = run_tool(["watch", "--timeout", "30", "--stall", "10", "--"] + cmd, input=b"hello\n", timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (direct.returncode, direct.stdout, direct.stderr)
    assert result.returncode == 7 and result.stdout == b"stdout:HELLO\n" and result.stderr == b"stderr line\n"
    ok = run_tool(["watch", "--timeout", "30", "--", sys.executable, "-c", "print('fine')"], timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"fine\n", b"")


def test_exit_statuses_like_timeout1(tmp_path):
    missing = run_tool(["watch", "--timeout", "5", "--", "/nonexistent/command"], timeout=60)
    assert missing.returncode == 127
    killed = run_tool(["watch", "--timeout", "30", "--", "sh", "-c", "kill -9 $$"], timeout=60)
    assert killed.returncode == 128 + 9
    usage = run_tool(["watch", "--", "true"], timeout=60)
    assert usage.returncode == 2 and b"--timeout" in usage.stderr


def test_cli_dispatches_watch_to_the_hang_watcher():
    from repl import dispatch
    from repl.commands.hangwatch import HangWatchCommand
    assert dispatch.command_class("watch", dispatch.CLI) is HangWatchCommand


def test_source_line_classification(tmp_path):
    from snapshot.hang import KernelState, classify_wait
    from snapshot.model import Frame
    src = tmp_path / "mod.py"
    src.write_text("x = d.get(1)\nlock.acquire()\nwith a:\n    pass\ntime.sleep(5)\n")
    frame = lambda line: (Frame("f", str(src), line),)  # noqa: E731
    assert classify_wait(frame(1), moved=True) is None                       # busy code is no wait
    assert classify_wait(frame(1), moved=False).kind == "queue"
    assert classify_wait(frame(2), moved=False).api == "lock.acquire()"
    assert classify_wait(frame(3), moved=False) is None                      # `with a:` alone proves nothing
    futex = KernelState("S", "futex", "lock")
    assert classify_wait(frame(3), moved=False, kernel=futex).kind == "lock"
    assert classify_wait(frame(5), moved=False).kind == "sleep"
    event = (Frame("Condition.wait", "/usr/lib/python3.12/threading.py", 355),
             Frame("Event.wait", "/usr/lib/python3.12/threading.py", 655), Frame("main", str(src), 5))
    info = classify_wait(event, moved=False)
    assert (info.api, info.caller.function, info.how) == ("Event.wait", "main", "library-frame")


def test_one_wait_table_for_idle_and_hang():
    from snapshot.waits import WAITS, is_idle_function, library_wait, syscall_wait
    lib = "/usr/lib/python3.12/"
    assert is_idle_function("Condition.wait", lib + "threading.py")
    assert is_idle_function("DefaultSelector.select", lib + "selectors.py")
    assert is_idle_function("poll", "/venv/site-packages/tornado/ioloop.py")
    assert not is_idle_function("Thread.join", lib + "threading.py")    # a wait, but not py-spy's idle
    assert not is_idle_function("wait", "/src/mythreading.py")          # suffixes match on a path boundary
    assert library_wait("Event.wait", lib + "threading.py") == ("condition", "Event.wait")
    assert library_wait("BaseProcess.join", lib + "multiprocessing/process.py") == ("join", "Process.join")
    assert library_wait("compute", lib + "threading.py") is None
    assert syscall_wait("x86_64", 202) == ("futex", "lock")
    kinds = {row[2] for row in WAITS}
    assert kinds <= {"lock", "condition", "barrier", "join", "queue", "recv", "select", "sleep"}


def test_engine_never_supervises_or_renders():
    """Ending trees and printing reports are the front ends' jobs (repl/supervise.py, repl/hangreport.py)."""
    import snapshot.hang as hang
    import snapshot.stall as stall
    for module in (hang, stall):
        source = open(module.__file__, encoding="utf-8").read()
        for word in ("terminate", ".kill(", "send_signal", "os.kill", "print(", ".write(", "sys.exit"):
            assert word not in source, "%s has %r" % (module.__name__, word)


PYTEST_FILE = '''
import threading


def test_before():
    pass


def test_deadlock():
    a, b = threading.Lock(), threading.Lock()
    barrier = threading.Barrier(2)

    def first_a_then_b():
        with a:
            barrier.wait()
            with b:  # HANG-AB
                pass

    def first_b_then_a():
        with b:
            barrier.wait()
            a.acquire()  # HANG-BA

    t1 = threading.Thread(target=first_a_then_b, name="ab")
    t2 = threading.Thread(target=first_b_then_a, name="ba")
    t1.start()
    t2.start()
    t1.join()


def test_after():
    pass
'''


def _plugin_option():
    """Load the plugin by module only when its pytest11 entry point is not installed.

    Once the package is installed (as README and CI do), pytest loads the
    plugin through the entry point, and ``-p repl.pytest_plugin`` would
    register it a second time.
    """
    try:
        from importlib.metadata import entry_points
        group = entry_points().select(group="pytest11") if hasattr(entry_points(), "select") \
            else entry_points().get("pytest11", ())
        if any(ep.value == "repl.pytest_plugin" for ep in group):
            return []
    except Exception:  # noqa: BLE001
        pass
    return ["-p", "repl.pytest_plugin"]


def test_pytest_plugin_reports_a_hanging_test(tmp_path):
    test_file = tmp_path / "test_hangs.py"
    test_file.write_text(textwrap.dedent(PYTEST_FILE))
    lines = {m: n for n, text_line in enumerate(PYTEST_FILE.splitlines(), 1)
             for m in ("HANG-AB", "HANG-BA") if m in text_line}
    env = tool_env()
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", *_plugin_option(), "-p", "no:cacheprovider",
                             "--hang-timeout", "2", "--hang-kill-after", "3", "--hang-json",
                             str(tmp_path / "hang.json"), str(test_file)],
                            capture_output=True, timeout=90, cwd=str(tmp_path), env=env)
    seconds = time.monotonic() - start
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1, out[-3000:] + err[-3000:]
    assert re.search(r"1 failed, 2 passed", out), out[-3000:]
    assert "TEST TIMEOUT after 2.0 s -- test_hangs.py::test_deadlock" in err
    assert re.search(r"'ab' STUCK +waiting in .*lock.* at test_deadlock.<locals>.first_a_then_b "
                     r"\(test_hangs.py:%d\)" % lines["HANG-AB"], err), err[-4000:]
    assert re.search(r"'ba' STUCK +waiting in lock.acquire\(\) at test_deadlock.<locals>.first_b_then_a "
                     r"\(test_hangs.py:%d\)" % lines["HANG-BA"], err), err[-4000:]
    assert "hang timeout: test_hangs.py::test_deadlock ran longer than 2.0s" in out
    with open(tmp_path / "hang.json", encoding="utf-8") as fh:
        reports = json.load(fh)
    assert [r["title"] for r in reports] == ["test_hangs.py::test_deadlock"]
    assert seconds < 40
