"""End to end: ``pyspy-repl record`` against real targets on every interpreter of the matrix.

* accuracy: tests/targets/cpu_shares.py spends 60/30/10% of its time in
  heavy/medium/light (sliced by perf_counter) for 20 whole cycles (~10 s),
  after a warm-up that gives the launching ``record -- python ...`` time to
  attach; recorded at 100 Hz until the target exits, each share must come
  out within 2 percentage points.  The recordings of all interpreters run
  up front, two at a time (PYSPY_REPL_ACCURACY_JOBS), and each
  ``test_accuracy[python]`` checks its own;
* every format produced by ``record`` is parsed and validated with the
  writer tests' independent readers (XML, speedscope's JSON schema,
  protobuf, trace events);
* --subprocesses with a multiprocessing pool: each worker is its own root;
* the target exiting mid-record, Ctrl-C and --flush-interval all leave a
  complete file.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

import pythons
from pythons import REPO, Target, run_tool, target_script, tool_env
from test_writers import REQUIRED, check_speedscope, decode_pprof, parse_raw, parse_svg

ACCURACY_SECONDS = 10
ACCURACY_PARALLEL = int(os.environ.get("PYSPY_REPL_ACCURACY_JOBS", "2"))
SHARES = {"heavy": 60.0, "medium": 30.0, "light": 10.0}
SUMMARY = re.compile(r"Wrote (\w+) profile to (.+): (\d+) samples, (\d+) errors, (\d+) late, (\d+) missed, "
                     r"([\d.:]+s?) \((.+?)\)")


def summary(proc):
    err = proc.stderr.decode("utf-8", "replace")
    m = SUMMARY.search(err)
    assert m, "no summary line in stderr:\n%s\nstdout:\n%s" % (err, proc.stdout.decode("utf-8", "replace"))
    return {"format": m.group(1), "path": m.group(2), "samples": int(m.group(3)), "errors": int(m.group(4)),
            "late": int(m.group(5)), "missed": int(m.group(6)), "reason": m.group(8)}


def speedscope_samples(doc, rate=100.0):
    """Samples in a speedscope file: weights are seconds (or counts when unit is none)."""
    total = 0.0
    for p in doc["profiles"]:
        scale = {"seconds": rate, "milliseconds": rate / 1e3, "microseconds": rate / 1e6,
                 "nanoseconds": rate / 1e9}.get(p["unit"], 1.0)
        total += sum(p["weights"]) * scale
    return int(round(total))


def shares_of(collapsed):
    counts = {name: 0 for name in SHARES}
    for path, n in collapsed.items():
        for name in SHARES:
            if re.search(r"(^|;)%s \(cpu_shares\.py" % name, path):
                counts[name] += n
    total = sum(counts.values())
    return {name: 100.0 * c / total for name, c in counts.items()} if total else {}, total


# --------------------------------------------------------------------------- accuracy

_ACCURACY = {}


def _record_accuracy(interp, workdir):
    out = os.path.join(workdir, "shares-%s.txt" % interp.id)
    started = time.monotonic()
    proc = run_tool(["record", "-f", "raw", "-r", "100", "-o", out, "--", interp.path,
                     target_script("cpu_shares.py"), str(ACCURACY_SECONDS), "--warmup-until-traced", "60"],
                   timeout=ACCURACY_SECONDS + 150)
    took = time.monotonic() - started
    if proc.returncode != 0:
        return {"error": "exit %d: %s" % (proc.returncode, proc.stderr.decode("utf-8", "replace")[-2000:])}
    info = summary(proc)
    with open(out, encoding="utf-8") as fh:
        collapsed = parse_raw(fh.read())
    shares, total = shares_of(collapsed)
    warmup = sum(n for path, n in collapsed.items() if "warmup (cpu_shares.py" in path)
    return dict(info, shares=shares, counted=total, seconds=took, warmup=warmup)


@pytest.fixture(scope="session")
def accuracy_results(tmp_path_factory):
    """Record every available interpreter's cpu_shares run, ACCURACY_PARALLEL at a time."""
    import conftest
    workdir = str(tmp_path_factory.mktemp("accuracy"))
    todo = [i for i in conftest.matrix() if i.available and i.id not in _ACCURACY
            and (not i.legacy or "test_record.py" in pythons.LEGACY_READY)]
    with ThreadPoolExecutor(max_workers=max(1, ACCURACY_PARALLEL)) as pool:
        for interp, result in zip(todo, pool.map(lambda i: _record_accuracy(i, workdir), todo)):
            _ACCURACY[interp.id] = result
    return _ACCURACY


def test_accuracy(python, accuracy_results):
    result = accuracy_results[python.id]
    assert "error" not in result, result["error"]
    assert result["reason"] == "target exited"
    assert result["counted"] >= 100, result  # enough samples for a share at all (tolerance follows the count)
    assert result["warmup"] > 0, "attached after the measured cycles began: %s" % result
    print("%s: %d samples (%d late, %d errors) in %.1fs: %s" % (
        python.id, result["counted"], result["late"], result["errors"], result["seconds"],
        ", ".join("%s %.1f%%" % (k, v) for k, v in result["shares"].items())))
    for name, want in SHARES.items():
        got = result["shares"][name]
        tolerance = pythons.share_tolerance(want, result["counted"])
        assert abs(got - want) <= tolerance, "%s: %s got %.2f%%, want %.0f%% +- %.1f (all: %s)" % (
            python.id, name, got, want, tolerance, result)


# --------------------------------------------------------------------------- formats

@pytest.fixture(scope="module")
def busy_target(tmp_path_factory):
    interp = next((i for i in __import__("conftest").matrix()
                   if i.id == pythons.CONSOLE_SCRIPT_INTERPRETER and i.available), None)
    if interp is None:
        pytest.skip("%s (PYSPY_REPL_ONCE_ON) not available" % pythons.CONSOLE_SCRIPT_INTERPRETER)
    t = Target(interp.path, target_script("threads_mix.py"), ["120"], str(tmp_path_factory.mktemp("busy")))
    pythons.wait_for_threads(t.pid, 3)  # both sleepers started: the interpreter is up
    yield t
    t.stop()


def _record(args, timeout=60):
    proc = run_tool(["record"] + [str(a) for a in args], timeout=timeout)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return summary(proc)


def test_flamegraph_format(busy_target, tmp_path):
    out = tmp_path / "p.svg"
    info = _record(["--pid", busy_target.pid, "-d", "1.5", "-o", out])
    assert info["format"] == "flamegraph" and info["reason"] == "duration reached"
    _, frames = parse_svg(out.read_text())
    assert frames, "no frame rectangles"
    top = max(frames, key=lambda f: f["samples"])
    assert top["samples"] == info["samples"] > 10
    labels = {f["label"] for f in frames}
    assert any(l.startswith("busy_loop (threads_mix.py:") for l in labels), labels
    # Idle threads are left out by default.  In blocking mode a sleeper woken by our interrupt can
    # still be runnable at the next pass on a loaded machine, so a few may slip in (see the report).
    idle = sum(f["samples"] for f in frames if f["label"].startswith("idle_wait"))
    busy = sum(f["samples"] for f in frames if f["label"].startswith("busy_loop"))
    assert idle < busy, (idle, busy)


def test_raw_format_threads_and_idle(busy_target, tmp_path):
    out = tmp_path / "p.txt"
    info = _record(["--pid", busy_target.pid, "-d", "1.5", "-o", out, "--threads", "--idle"])
    assert info["format"] == "raw"
    collapsed = parse_raw(out.read_text())
    assert sum(collapsed.values()) == info["samples"]
    roots = {path.split(";")[0] for path in collapsed}
    assert len(roots) == 3, roots
    assert any(r.endswith(": sleeper-0") for r in roots) and any(r.endswith(": MainThread") for r in roots)
    assert any("idle_wait (threads_mix.py:" in p for p in collapsed)


def test_speedscope_format(busy_target, tmp_path):
    out = tmp_path / "p.speedscope.json"  # format from the extension
    info = _record(["--pid", busy_target.pid, "-d", "1.5", "-o", out, "--idle"])
    assert info["format"] == "speedscope"
    doc = json.loads(out.read_text())
    check_speedscope(doc)
    assert len(doc["profiles"]) == 3  # one per thread
    assert speedscope_samples(doc) == info["samples"]
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert {"busy_loop", "idle_wait"} <= names, names


def test_chrometrace_format(busy_target, tmp_path):
    out = tmp_path / "p.json"
    info = _record(["--pid", busy_target.pid, "-d", "1.5", "-o", out, "-f", "chrometrace"])
    assert info["format"] == "chrometrace"
    doc = json.loads(out.read_text())
    events = doc["traceEvents"]
    assert events
    for e in events:
        assert e["ph"] in REQUIRED and REQUIRED[e["ph"]] <= set(e), e
    complete = [e for e in events if e["ph"] == "X"]
    assert any(e["name"] == "busy_loop" for e in complete)
    assert all(e["pid"] == busy_target.pid for e in complete)
    assert all(e["dur"] >= 0 for e in complete)


def test_chrometrace_busy_thread_is_one_continuous_slice(busy_target, tmp_path):
    """The busy main thread is seen in every pass: its outermost frame never shows a gap, even at a
    rate this machine cannot keep (late passes stretch the slice instead of cutting it)."""
    out = tmp_path / "p.json"
    info = _record(["--pid", busy_target.pid, "-d", "1.5", "-r", "400", "-o", out, "-f", "chrometrace"])
    doc = json.loads(out.read_text())
    roots = sorted((e["ts"], e["ts"] + e["dur"]) for e in doc["traceEvents"]
                   if e["ph"] == "X" and e["tid"] == busy_target.pid and e["name"] == "<module>")
    assert roots, doc["traceEvents"][:5]
    gaps = [b[0] - a[1] for a, b in zip(roots, roots[1:]) if b[0] > a[1]]
    assert not gaps, "gaps (us) in a thread busy the whole time: %s (%s)" % (gaps[:10], info)
    assert doc["otherData"]["passes"] >= info["samples"] // 2 and "late" in doc["otherData"]


def test_record_says_when_it_falls_behind(busy_target, tmp_path):
    """At a rate no Python sampler keeps, the user is told (py-spy: "behind in sampling")."""
    out = tmp_path / "p.txt"
    proc = run_tool(["record", "--pid", busy_target.pid, "-d", "2", "-r", "20000", "-o", out], timeout=60)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    assert "behind in sampling" in err and "try a lower --rate" in err, err
    info = summary(proc)
    assert info["late"] + info["missed"] > 0, info


def test_pprof_format(busy_target, tmp_path):
    out = tmp_path / "p.pb.gz"
    info = _record(["--pid", busy_target.pid, "-d", "1.5", "-o", out, "--nonblocking", "-F"])
    assert info["format"] == "pprof"
    data = out.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    prof = decode_pprof(data)
    strings = list(prof.string_table)
    assert strings[0] == ""
    assert sum(s.value[0] for s in prof.sample) == info["samples"]
    functions = {strings[f.name] for f in prof.function}
    assert "busy_loop" in functions, functions
    assert prof.period > 0 and prof.sample_type
    # pprof's headline names the main binary: the interpreter the target runs, mapped first
    exe = os.path.realpath(os.readlink("/proc/%d/exe" % busy_target.pid))
    assert prof.mapping and os.path.realpath(strings[prof.mapping[0].filename]) == exe, list(prof.mapping)[:3]
    assert prof.mapping[0].memory_limit > prof.mapping[0].memory_start
    assert len(prof.mapping) > 1  # and its libraries (libc at least)


def _wait_for_recording(proc, out, timeout=60.0):
    """Until ``record`` samples (its periodic flush wrote the file), not a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def test_ctrl_c_writes_the_file(busy_target, tmp_path):
    out = tmp_path / "p.txt"
    proc = subprocess.Popen([sys.executable, "-m", "repl.cli", "record", "--pid", str(busy_target.pid), "-o",
                             str(out), "--flush-interval", "0.3"], cwd=REPO, env=tool_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_recording(proc, out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    info = summary(subprocess.CompletedProcess([], 0, stdout, stderr))
    assert info["reason"] == "interrupted"
    assert sum(parse_raw(out.read_text()).values()) == info["samples"] > 0
    assert busy_target.alive()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_flush_interval_rewrites_during_recording(busy_target, tmp_path):
    out = tmp_path / "p.txt"
    proc = subprocess.Popen([sys.executable, "-m", "repl.cli", "record", "--pid", str(busy_target.pid), "-o",
                             str(out), "-d", "4", "--flush-interval", "0.5"],
                            cwd=REPO, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    while proc.poll() is None:  # until the recording ends (-d 4): growing flushes meanwhile
        if out.exists():
            seen.append(sum(parse_raw(out.read_text()).values()))
        time.sleep(0.25)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert len(set(seen)) >= 2 and seen == sorted(seen), seen  # several growing flushes before the end
    final = summary(subprocess.CompletedProcess([], 0, stdout, stderr))
    assert sum(parse_raw(out.read_text()).values()) == final["samples"] >= max(seen)


# --------------------------------------------------------------------------- every interpreter

def _marker_line(marker):
    with open(target_script("threads_mix.py"), encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if "# " + marker in line:
                return number
    raise AssertionError("no %s in threads_mix.py" % marker)


@pytest.fixture(scope="module")
def mix_target(python, tmp_path_factory):
    """threads_mix.py on this interpreter, with its truth: each thread's name, ident and OS id."""
    workdir = str(tmp_path_factory.mktemp("mix-" + python.id))
    truth_path = os.path.join(workdir, "truth.json")
    t = Target(python.path, target_script("threads_mix.py"), ["300", truth_path], workdir)
    try:
        t.wait_for_file(truth_path, 60)
        with open(truth_path, encoding="utf-8") as fh:
            t.truth = json.load(fh)
        yield t
    finally:
        t.stop()


FORMATS = {"raw": ("p.txt", ["--threads", "--idle"]), "flamegraph": ("p.svg", []),
           "speedscope": ("p.speedscope.json", ["--idle"]), "chrometrace": ("p.json", ["-f", "chrometrace", "--idle"]),
           "pprof": ("p.pb.gz", ["-F"])}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_on_every_interpreter(python, mix_target, fmt, tmp_path):
    """Each format of a recording of threads_mix.py, checked against what the target says of itself:
    its threads' names and ids, and the lines it is on (its marked lines)."""
    name, extra = FORMATS[fmt]
    out = tmp_path / name
    info = _record(["--pid", mix_target.pid, "-d", "1.5", "-o", out] + extra)
    assert info["format"] == fmt and info["reason"] == "duration reached" and info["samples"] > 0, info
    truth = mix_target.truth
    assert truth["pid"] == mix_target.pid
    by_native = {t["native_id"]: t["name"] for t in truth["threads"]}
    assert sorted(by_native.values()) == ["MainThread", "sleeper-0", "sleeper-1"]
    assert {t["native_id"] for t in truth["threads"]} == {int(x) for x in os.listdir("/proc/%d/task" % truth["pid"])}
    busy = {"busy_loop (threads_mix.py:%d)" % _marker_line(m) for m in ("BUSY-WHILE", "BUSY-BODY")}
    idle = "idle_wait (threads_mix.py:%d)" % _marker_line("IDLE-SLEEP")
    main = "<module> (threads_mix.py:%d)" % _marker_line("MAIN-CALL")
    if fmt == "raw":
        collapsed = parse_raw(out.read_text())
        assert sum(collapsed.values()) == info["samples"]
        want_roots = {"thread (0x%X): %s" % (t["ident"], t["name"]) for t in truth["threads"]}
        assert {path.split(";")[0] for path in collapsed} == want_roots
        for path in collapsed:
            root, frames = path.split(";")[0], path.split(";")[1:]
            if root.endswith(": MainThread"):
                assert frames[0] == main and frames[-1] in busy, path
            else:
                assert frames[-1] == idle, path
    elif fmt == "flamegraph":
        _, frames = parse_svg(out.read_text())
        labels = {f["label"] for f in frames}
        assert main in labels and labels & busy, labels
        assert max(f["samples"] for f in frames) == info["samples"]
    elif fmt == "speedscope":
        doc = json.loads(out.read_text())
        check_speedscope(doc)
        assert speedscope_samples(doc) == info["samples"]
        assert sorted(p["name"] for p in doc["profiles"]) == sorted(
            'Thread %d "%s"' % (tid, n) for tid, n in by_native.items())
        shared = {"%s (%s:%d)" % (f["name"], os.path.basename(f["file"]), f["line"]) for f in doc["shared"]["frames"]}
        assert {main, idle} <= shared and shared & busy, shared
    elif fmt == "chrometrace":
        doc = json.loads(out.read_text())
        names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
                 if e["ph"] == "M" and e["name"] == "thread_name"}
        assert names == by_native
        slices = {(e["tid"], e["name"], e["args"]["line"]) for e in doc["traceEvents"] if e["ph"] == "X"}
        main_tid = [tid for tid, n in by_native.items() if n == "MainThread"][0]
        assert main_tid == mix_target.pid
        assert (main_tid, "<module>", _marker_line("MAIN-CALL")) in slices, slices
        assert {(main_tid, "busy_loop", _marker_line(m)) for m in ("BUSY-WHILE", "BUSY-BODY")} & slices, slices
        for tid, n in by_native.items():
            if n != "MainThread":
                assert (tid, "idle_wait", _marker_line("IDLE-SLEEP")) in slices, (n, slices)
    else:
        prof = decode_pprof(out.read_bytes())
        strings = list(prof.string_table)
        assert sum(s.value[0] for s in prof.sample) == info["samples"]
        functions = {strings[f.name]: f.start_line for f in prof.function}
        # -F: the lowest line seen in the function (the frames carry no co_firstlineno)
        assert functions.get("busy_loop") in {_marker_line(m) for m in ("BUSY-WHILE", "BUSY-BODY")}, functions
        assert functions.get("<module>") == _marker_line("MAIN-CALL"), functions
        exe = os.path.realpath(os.readlink("/proc/%d/exe" % mix_target.pid))
        assert os.path.realpath(strings[prof.mapping[0].filename]) == exe



def test_target_exit_mid_record_writes_file(python, tmp_path):
    t = Target(python.path, target_script("threads_mix.py"), ["5"], str(tmp_path))  # outlives a slow attach
    try:
        pythons.wait_for_threads(t.pid, 3)
        out = tmp_path / "p.speedscope.json"
        info = _record(["--pid", t.pid, "-d", "120", "-o", out], timeout=150)
        assert info["reason"] == "target exited" and info["samples"] > 0
        doc = json.loads(out.read_text())
        check_speedscope(doc)
        assert speedscope_samples(doc) == info["samples"]
    finally:
        t.stop()


def test_subprocesses_multiprocessing_pool(python, tmp_path):
    out = tmp_path / "p.txt"
    proc = run_tool(["record", "-s", "-f", "raw", "-o", out, "--", python.path, target_script("mp_pool.py"), "3"],
                    timeout=90)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    info = summary(proc)
    assert info["reason"] == "target exited"
    collapsed = parse_raw(out.read_text())
    roots = {}
    for path, n in collapsed.items():
        m = re.match(r'process (\d+):"([^"]*)"', path)
        assert m, path  # every stack starts at its process
        roots.setdefault(int(m.group(1)), []).append((path, n))
    workers = [pid for pid, paths in roots.items() if any("child_work (mp_pool.py:" in p for p, _ in paths)]
    assert len(workers) >= 2, "expected two pool workers as separate roots, got %s" % sorted(roots)
    for pid in workers:
        assert sum(n for p, n in roots[pid] if "child_work" in p) > 0


# --------------------------------------------------------------------------- process trees

def _shell(python_path, seconds, delay=0.0):
    """A bash that runs a Python child (``; true`` keeps bash from exec'ing it)."""
    return ["bash", "-c", "sleep %s; %s %s %s; true" % (delay, python_path, target_script("threads_mix.py"),
                                                         seconds)]


def _once_interp():
    interp = next((i for i in __import__("conftest").matrix()
                   if i.id == pythons.CONSOLE_SCRIPT_INTERPRETER and i.available), None)
    if interp is None:
        pytest.skip("%s (PYSPY_REPL_ONCE_ON) not available" % pythons.CONSOLE_SCRIPT_INTERPRETER)
    return interp


def test_launched_non_python_without_subprocesses_is_refused_at_once(tmp_path):
    started = time.monotonic()
    proc = run_tool(["record", "-o", tmp_path / "p.txt", "--", "bash", "-c", "sleep 30; true"], timeout=60)
    took = time.monotonic() - started
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "not a Python process" in err and "--subprocesses" in err, err
    assert took < 25, "waited for the command (%.1fs) instead of saying so at once" % took
    assert not (tmp_path / "p.txt").exists()


def test_launched_shell_with_subprocesses_samples_its_python_child(tmp_path):
    interp = _once_interp()
    out = tmp_path / "p.txt"
    proc = run_tool(["record", "-s", "-f", "raw", "-o", out, "--"] + _shell(interp.path, 6), timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = summary(proc)
    assert info["reason"] == "target exited", info
    collapsed = parse_raw(out.read_text())
    assert any("busy_loop (threads_mix.py:" in path for path in collapsed), collapsed
    assert info["samples"] > 0


def test_pid_of_shell_with_subprocesses_and_dump_subprocesses(tmp_path):
    interp = _once_interp()
    shell = subprocess.Popen(_shell(interp.path, 60), start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        child = None
        while time.monotonic() < deadline and child is None:
            # bash's Python child runs Python once it has started its two sleeper threads
            kids = psutil.Process(shell.pid).children()
            if kids and kids[0].num_threads() >= 3:
                child = kids[0].pid
            time.sleep(0.05)
        assert child, "bash did not start its Python child"
        dump = run_tool(["dump", "--pid", shell.pid, "--subprocesses"], timeout=60)
        text = dump.stdout.decode()
        assert dump.returncode == 0, dump.stderr
        assert "Process %d:" % child in text and "busy_loop (threads_mix.py:" in text, text
        plain = run_tool(["dump", "--pid", shell.pid], timeout=60)
        assert plain.returncode != 0 and "not a Python process" in plain.stderr.decode()
        out = tmp_path / "p.txt"
        info = _record(["-s", "--pid", shell.pid, "-d", "6", "-f", "raw", "-o", out], timeout=120)
        collapsed = parse_raw(out.read_text())
        assert any("busy_loop (threads_mix.py:" in path for path in collapsed), (info, collapsed)
    finally:
        os.killpg(shell.pid, 9)
        shell.wait()
