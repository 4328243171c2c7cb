"""End to end: `dump` against live targets, compared with the truth they write about themselves.

For every interpreter of the matrix (tests/pythons.py) a target
(tests/targets/dump_target.py, then unseen_target.py) starts threads of many
shapes, waits until each is blocked, and writes TRUTH (tests/targets/truthlib.py):
thread ids, names, and innermost-first frames with function, filename, line and
locals.  The tool must reproduce all of it:

* every thread (same count, same ids, native ids and names);
* 100% of the stacks (function, filename, line), except the innermost part of
  the one busy thread, whose functions must be among the ones it can be in;
* every local by name, with its address (``id``) and argument flag, and its
  repr exactly when it is reproducible from memory and <= 1024 characters.

Run:  python -m pytest tests/test_dump_e2e.py        (PYSPY_REPL_MATRIX=3.12-pyenv,... to narrow)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time

import pytest

import pythons
from pythons import Target, run_tool, target_script

MAX_PROBLEMS = 60


# --------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------
def _fmt_frame(fr):
    return "%s (%s:%s)" % (fr.get("function", fr.get("name")), fr.get("filename"), fr.get("line"))


def _thread_label(t):
    return "thread %s %r (role %s, tid %s)" % (hex(t["thread_id"]), t["name"], t["role"], t["native_id"])


def _busy_names(truth_thread):
    return {tuple(x) for x in truth_thread.get("allowed", [])}


def compare_locals(where, truth_frame, got_frame, problems, stats):
    expected = truth_frame["locals"]
    got_list = got_frame.get("locals")
    if got_list is None:
        problems.append("%s: locals missing (null), expected %d: %s" % (where, len(expected), sorted(expected)))
        return
    got = {}
    for loc in got_list:
        if loc["name"] in got:
            problems.append("%s: local %r reported twice" % (where, loc["name"]))
        got[loc["name"]] = loc
    extra = sorted(set(got) - set(expected))
    if extra:
        problems.append("%s: unexpected locals %s (reprs %s)" % (
            where, extra, [got[n].get("repr") for n in extra][:5]))
    for name, exp in expected.items():
        loc = got.get(name)
        if loc is None:
            problems.append("%s: local %r missing (expected %s)" % (where, name, (exp["repr"] or "")[:120]))
            continue
        stats["locals"] += 1
        if loc.get("addr") != exp["id"]:
            problems.append("%s: local %r addr %s, expected id() %s" % (
                where, name, _hex(loc.get("addr")), _hex(exp["id"])))
        # "arg": a parameter (keyword-only, *args, **kwargs included); py-spy's narrower
        # "positional parameter" reading is accepted too.
        if bool(loc.get("arg")) not in (exp["arg"], exp.get("positional", exp["arg"])):
            problems.append("%s: local %r arg=%s, expected %s" % (where, name, loc.get("arg"), exp["arg"]))
        r = loc.get("repr")
        if exp["check"] == "exact":
            stats["exact"] += 1
            if r != exp["repr"]:
                problems.append("%s: local %r repr\n      expected %r\n      got      %r" % (where, name, exp["repr"], r))
        elif exp["check"] == "opaque":
            stats["opaque"] += 1
            addr = "0x%x" % exp["id"]
            ok = r is not None and (r == exp["repr"] or r == exp["default_repr"]
                                    or (addr in r.lower() and exp["type"] in r))
            if not ok:
                problems.append("%s: local %r (%s) repr %r: expected %r, %r or the type name and %s" % (
                    where, name, exp["type"], r, exp["repr"][:200], exp["default_repr"], addr))
        else:
            stats["long"] += 1
            if not isinstance(r, str) or not r:
                problems.append("%s: local %r (long repr) has no repr: %r" % (where, name, r))


def _hex(v):
    return hex(v) if isinstance(v, int) else repr(v)


def compare_dump(truth, dump, check_locals=True, stats=None):
    """Problems (strings) between TRUTH and the tool's `dump --json` list; empty if equal."""
    stats = stats if stats is not None else {}
    for k in ("threads", "frames", "locals", "exact", "opaque", "long"):
        stats.setdefault(k, 0)
    problems = []
    if not isinstance(dump, list):
        return ["dump --json is not a list of threads: %s" % type(dump).__name__]
    by_id = {}
    for t in dump:
        if t.get("thread_id") in by_id:
            problems.append("thread_id %s appears twice" % _hex(t.get("thread_id")))
        by_id[t.get("thread_id")] = t
        if t.get("pid") != truth["pid"]:
            problems.append("thread %s: pid %s, expected %s" % (_hex(t.get("thread_id")), t.get("pid"), truth["pid"]))
    expected_ids = {t["thread_id"] for t in truth["threads"]}
    if len(dump) != len(truth["threads"]):
        problems.append("thread count %d, expected %d" % (len(dump), len(truth["threads"])))
    for tid in sorted(set(by_id) - expected_ids, key=str):
        t = by_id[tid]
        problems.append("unexpected thread %s %r (%d frames, innermost %s)" % (
            _hex(tid), t.get("thread_name"), len(t.get("frames") or []),
            _fmt_frame(t["frames"][0]) if t.get("frames") else None))
    gil_owners = [t for t in dump if t.get("owns_gil")]
    busy_ids = {t["thread_id"] for t in truth["threads"] if t["busy"]}
    if len(gil_owners) > 1:
        problems.append("%d threads own the GIL: %s" % (len(gil_owners), [_hex(t["thread_id"]) for t in gil_owners]))
    for t in gil_owners:
        if t.get("thread_id") not in busy_ids:
            problems.append("thread %s %r owns the GIL but is blocked in C (GIL released)" % (
                _hex(t.get("thread_id")), t.get("thread_name")))

    for exp in truth["threads"]:
        label = _thread_label(exp)
        got = by_id.get(exp["thread_id"])
        if got is None:
            problems.append("%s: missing from the dump (innermost %s)" % (label, _fmt_frame(exp["frames"][0])))
            continue
        stats["threads"] += 1
        # a thread unknown to `threading` has no name; the OS thread name (comm) is accepted too
        unnamed_ok = ("", None, exp.get("os_name")) if exp["name"] is None else ()
        if got.get("thread_name") != exp["name"] and got.get("thread_name") not in unnamed_ok:
            problems.append("%s: thread_name %r, expected %r" % (label, got.get("thread_name"), exp["name"]))
        if got.get("os_thread_id") != exp["native_id"]:
            problems.append("%s: os_thread_id %s, expected native_id %s" % (label, got.get("os_thread_id"), exp["native_id"]))
        if not exp["busy"] and got.get("active"):
            problems.append("%s: reported active, but it is blocked in a C call (idle)" % label)
        frames = got.get("frames") or []
        exp_frames = exp["frames"]
        if exp["busy"]:
            allowed = _busy_names(exp)
            for i, fr in enumerate(frames):
                if (fr.get("name"), fr.get("filename")) not in allowed:
                    problems.append("%s (busy): frame #%d %s is not one the thread can be in: %s" % (
                        label, i, _fmt_frame_got(fr), sorted(allowed)))
            # the frames outside the busy functions never change
            busy_funcs = {tuple(x) for x in exp.get("busy_functions", [])}
            exp_outer = [f for f in exp_frames if (f["function"], f["filename"]) not in busy_funcs]
            got_outer = [f for f in frames if (f.get("name"), f.get("filename")) not in busy_funcs]
            if [(f["function"], f["filename"], f["line"]) for f in exp_outer] != \
               [(f.get("name"), f.get("filename"), f.get("line")) for f in got_outer]:
                problems.append("%s (busy): outer frames differ:\n      expected %s\n      got      %s" % (
                    label, [_fmt_frame(f) for f in exp_outer], [_fmt_frame_got(f) for f in got_outer]))
            continue
        if len(frames) != len(exp_frames):
            problems.append("%s: %d frames, expected %d\n      expected innermost: %s\n      got innermost:      %s" % (
                label, len(frames), len(exp_frames), [_fmt_frame(f) for f in exp_frames[:6]],
                [_fmt_frame_got(f) for f in frames[:6]]))
        frame_mismatches = 0
        for i, (ef, gf) in enumerate(zip(exp_frames, frames)):
            stats["frames"] += 1
            where = "%s frame #%d %s" % (label, i, _fmt_frame(ef))
            if (gf.get("name"), gf.get("filename"), gf.get("line")) != (ef["function"], ef["filename"], ef["line"]):
                frame_mismatches += 1
                if frame_mismatches <= 4:
                    problems.append("%s: got %s" % (where, _fmt_frame_got(gf)))
                continue
            short = gf.get("short_filename")
            if short is not None and not ef["filename"].endswith(short):
                problems.append("%s: short_filename %r is not a suffix of the filename" % (where, short))
            if check_locals and ef["kind"] == "function":
                compare_locals(where, ef, gf, problems, stats)
        if frame_mismatches > 4:
            problems.append("%s: ... %d more frames differ" % (label, frame_mismatches - 4))
    return problems


def _fmt_frame_got(fr):
    return "%s (%s:%s)" % (fr.get("name"), fr.get("filename"), fr.get("line"))


def report(problems, title):
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    pytest.fail("%s: %d problem(s)\n  - %s%s" % (
        title, len(problems), "\n  - ".join(shown), "\n  ... and %d more" % more if more else ""),
        pytrace=False)


# --------------------------------------------------------------------------
# the text form (py-spy 0.4's shape)
# --------------------------------------------------------------------------
HEADER_RE = re.compile(r'^Thread (0x[0-9A-F]+|\d+) \((idle|active)(\+gil)?\)(?:: "(.*?)")?(?: \[(.*)\])?$')
FRAME_RE = re.compile(r"^    (\S.*) \((.*):(\d+)\)$")


def parse_text_dump(text):
    """{"process": line, "python": line, "threads": [{"id", "state", "gil", "name", "frames": [...]}]}"""
    lines = text.splitlines()
    assert len(lines) >= 3, "text dump too short:\n" + text
    out = {"process": lines[0], "python": lines[1], "blank": lines[2], "threads": []}
    cur = frame = None
    for n, line in enumerate(lines[3:], 4):
        m = HEADER_RE.match(line)
        if m:
            cur = {"id": m.group(1), "state": m.group(2), "gil": bool(m.group(3)), "name": m.group(4),
                   "frames": [], "line": n}
            out["threads"].append(cur)
            frame = None
            continue
        m = FRAME_RE.match(line)
        if m and cur is not None:
            frame = {"function": m.group(1), "file": m.group(2), "line": int(m.group(3)), "locals": {}, "sub": []}
            cur["frames"].append(frame)
            continue
        if line.startswith("        ") and frame is not None:
            body = line.strip()
            frame["sub"].append(body)
            if ": " in body:
                k, v = body.split(": ", 1)
                frame["locals"].setdefault(k, v)
            continue
        if not line.strip():
            continue
        raise AssertionError("text dump line %d has an unexpected shape: %r" % (n, line))
    return out


def check_text_dump(truth, text, json_dump, with_locals):
    problems = []
    parsed = parse_text_dump(text)
    pid = truth["pid"]
    if not parsed["process"].startswith("Process %d: " % pid):
        problems.append("first line %r, expected 'Process %d: CMDLINE'" % (parsed["process"], pid))
    elif os.path.basename(target_script_name(truth)) not in parsed["process"]:
        problems.append("first line %r does not show the command line" % parsed["process"])
    m = re.match(r"^Python v(\d+\.\d+\.\d+\S*) \((.+)\)$", parsed["python"])
    if not m:
        problems.append("second line %r, expected 'Python vX.Y.Z (EXECUTABLE)'" % parsed["python"])
    else:
        if m.group(1) != truth["python_version"]:
            problems.append("version %s, expected %s" % (m.group(1), truth["python_version"]))
        exes = {truth["executable"], truth["exe_realpath"], os.path.realpath(truth["executable"])}
        if m.group(2) not in exes and os.path.realpath(m.group(2)) not in exes:
            problems.append("executable %r, expected one of %s" % (m.group(2), sorted(x for x in exes if x)))
    if parsed["blank"] != "":
        problems.append("third line should be blank: %r" % parsed["blank"])
    by_native = {t["native_id"]: t for t in truth["threads"]}
    by_ident = {t["thread_id"]: t for t in truth["threads"]}
    json_by_id = {t["thread_id"]: t for t in json_dump}
    if len(parsed["threads"]) != len(truth["threads"]):
        problems.append("text shows %d threads, expected %d" % (len(parsed["threads"]), len(truth["threads"])))
    for th in parsed["threads"]:
        tid = th["id"]
        exp = by_ident.get(int(tid, 16)) if tid.startswith("0x") else by_native.get(int(tid))
        if exp is None:
            problems.append("text line %d: thread %s matches no thread of the target" % (th["line"], tid))
            continue
        label = _thread_label(exp)
        if th["name"] != exp["name"]:
            problems.append("%s: text name %r" % (label, th["name"]))
        if not exp["busy"] and th["state"] != "idle":
            problems.append("%s: text state %s, expected idle" % (label, th["state"]))
        js = json_by_id.get(exp["thread_id"])
        if js is not None and not exp["busy"]:
            want = [(f["name"], f.get("short_filename") or os.path.basename(f["filename"]), f["line"]) for f in js["frames"]]
            have = [(f["function"], f["file"], f["line"]) for f in th["frames"]]
            if want != have:
                problems.append("%s: text frames differ from --json frames:\n      json %s\n      text %s" % (
                    label, want[:5], have[:5]))
        if not with_locals:
            if any(f["sub"] for f in th["frames"]):
                problems.append("%s: locals printed without --locals" % label)
            continue
        if exp["busy"]:
            continue
        for i, (ef, tf) in enumerate(zip(exp["frames"], th["frames"])):
            if ef["kind"] != "function":
                continue
            for name, loc in ef["locals"].items():
                if loc["check"] != "exact" or "\n" in loc["repr"]:
                    continue
                if tf["locals"].get(name) != loc["repr"]:
                    problems.append("%s frame #%d %s: text local %r is %r, expected %r" % (
                        label, i, _fmt_frame(ef), name, tf["locals"].get(name), loc["repr"]))
    return problems


def target_script_name(truth):
    return truth["argv"][0]


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
def _dump_json(pid, extra=(), prefix=None):
    r = run_tool(["dump", "--pid", pid, "--json"] + list(extra), prefix=prefix)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "dump --json exited %d\nstderr:\n%s\nstdout:\n%s" % (r.returncode, err[-3000:], out[-2000:])
    try:
        return json.loads(out)
    except ValueError as exc:
        raise AssertionError("dump --json printed invalid JSON (%s):\n%s\nstderr:\n%s" % (exc, out[:2000], err[-2000:]))


class Started:
    """A target started in the background; ``truth()`` waits for its TRUTH."""

    def __init__(self, python, script, workdir):
        self.truth_path = os.path.join(workdir, "truth.json")
        self.target = Target(python.path, script, [self.truth_path, "--workdir", workdir]
                             if script.endswith("dump_target.py") else [self.truth_path], workdir=workdir)
        self._truth = None

    def truth(self):
        if self._truth is None:
            self._truth = self.target.wait_truth(self.truth_path, timeout=90)
        return self._truth


@pytest.fixture(scope="module")
def targets(python, tmp_path_factory):
    """Both targets of one interpreter, started together (they get ready in parallel)."""
    if not python.available:
        pytest.skip("%s: %s" % (python.id, python.missing))
    base = tmp_path_factory.mktemp("e2e-" + python.id)
    started = {}
    try:
        for name in ("dump_target.py", "unseen_target.py"):
            wd = os.path.join(str(base), name[:-3])
            os.makedirs(wd)
            started[name] = Started(python, target_script(name, python), wd)
        yield started
    finally:
        for s in started.values():
            s.target.stop()


@pytest.fixture(scope="module")
def dump_target(targets):
    s = targets["dump_target.py"]
    return s.target, s.truth()


@pytest.fixture(scope="module")
def unseen_target(targets):
    s = targets["unseen_target.py"]
    return s.target, s.truth()


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------
def test_truth_is_sane(python, dump_target):
    """The target itself: every shape present (guards the harness, not the tool)."""
    target, truth = dump_target
    roles = {t["role"] for t in truth["threads"]}
    expected = {"main", "recursion", "method", "classmethod", "staticmethod", "closure", "lambda",
                "listcomp", "generator", "asyncio", "exec-pseudo", "unicode", "sleep", "pipe-read",
                "locals-zoo", "busy", "default-name"}
    if python.minor.startswith("2."):
        # tests/targets/py27/dump_target.py: no asyncio in 2.7; an old-style class instead
        expected = expected - {"asyncio"} | {"old-style"}
    assert expected <= roles, sorted(expected - roles)
    rec = [t for t in truth["threads"] if t["role"] == "recursion"][0]
    assert sum(f["function"].endswith("recurse") for f in rec["frames"]) == 500
    assert truth["python_version"] == python.version


def test_dump_json_locals_matches_truth(python, dump_target):
    target, truth = dump_target
    dump = _dump_json(target.pid, ["--locals"])
    stats = {}
    problems = compare_dump(truth, dump, check_locals=True, stats=stats)
    report(problems, "%s dump --json --locals vs TRUTH (%s)" % (python.id, stats))
    assert stats["threads"] == len(truth["threads"])
    assert target.alive()


def test_dump_json_without_locals(python, dump_target):
    target, truth = dump_target
    dump = _dump_json(target.pid)
    problems = compare_dump(truth, dump, check_locals=False)
    for t in dump:
        for f in t.get("frames") or []:
            if f.get("locals"):
                problems.append("thread %s: locals present without --locals" % _hex(t["thread_id"]))
                break
    report(problems, "%s dump --json vs TRUTH" % python.id)


def test_unseen_target_matches_truth(python, unseen_target):
    target, truth = unseen_target
    assert len(truth["threads"]) >= 21
    dump = _dump_json(target.pid, ["--locals"])
    stats = {}
    problems = compare_dump(truth, dump, check_locals=True, stats=stats)
    report(problems, "%s unseen target: dump --json --locals vs TRUTH (%s)" % (python.id, stats))


@pytest.mark.parametrize("with_locals", [False, True], ids=["text", "text-locals"])
def test_dump_text_shape(python, dump_target, with_locals):
    target, truth = dump_target
    extra = ["--locals"] if with_locals else []
    js = _dump_json(target.pid, extra)
    r = run_tool(["dump", "--pid", target.pid] + extra)
    text = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")[-3000:]
    report(check_text_dump(truth, text, js, with_locals), "%s text dump%s" % (
        python.id, " --locals" if with_locals else ""))


# ---- console scripts (once, on the interpreter running the tests if in the matrix) ----
def _script_files():
    """``[tool.setuptools] script-files`` of pyproject.toml: the console scripts installed as written."""
    with open(os.path.join(pythons.REPO, "pyproject.toml"), encoding="utf-8") as fh:
        text = fh.read()
    try:
        import tomllib
        return tomllib.loads(text)["tool"]["setuptools"]["script-files"]
    except ImportError:
        return re.findall(r'"(bin/[\w.-]+)"', re.search(r"^script-files\s*=\s*\[(.*?)\]", text, re.M | re.S).group(1))


@pytest.fixture(scope="session")
def console_scripts(tmp_path_factory):
    """{'pyspy-repl': path, 'pyspy-snapshot': path}: the installed console scripts (beside the
    interpreter running the tests, or on PATH), else the checkout's ``bin/`` scripts with the
    ``#!python`` line rewritten to this interpreter, as pip installs them."""
    files = _script_files()
    out = {}
    bindir = tmp_path_factory.mktemp("console-scripts")
    for name in ("pyspy-repl", "pyspy-snapshot"):
        assert "bin/" + name in files, "pyproject.toml [tool.setuptools] script-files lacks bin/%s" % name
        beside = os.path.join(os.path.dirname(sys.executable), name)
        installed = beside if os.access(beside, os.X_OK) else shutil.which(name)
        if installed:
            out[name] = installed
            continue
        with open(os.path.join(pythons.REPO, "bin", name), encoding="utf-8") as fh:
            first, rest = fh.read().split("\n", 1)
        assert first == "#!python", first
        path = bindir / name
        path.write_text("#!%s\n%s" % (sys.executable, rest))
        path.chmod(0o755)
        out[name] = str(path)
    return out


@pytest.mark.parametrize("command", [["pyspy-repl", "dump"], ["pyspy-snapshot", "dump"]],
                         ids=["pyspy-repl-dump", "pyspy-snapshot-dump"])
def test_console_script(once_python, console_scripts, command, tmp_path):
    """The installed entry points (once, on one interpreter): same result as `python -m repl.cli`."""
    s = Started(once_python, target_script("dump_target.py"), str(tmp_path))
    try:
        truth = s.truth()
        exe = console_scripts[command[0]]
        dump = _dump_json(s.target.pid, ["--locals"], prefix=[exe])
        report(compare_dump(truth, dump, check_locals=True),
               "%s %s --json --locals (%s)" % (once_python.id, " ".join(command), exe))
    finally:
        s.target.stop()


# ---- many dumps in a row: the target keeps running and is never left stopped ----
N_DUMPS = int(os.environ.get("PYSPY_REPL_N_DUMPS", "200"))


def _read_counter(path):
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_many_dumps_leave_target_running(once_python, tmp_path):
    """N_DUMPS (200) blocking dumps in a row of a busy target: it is never left stopped or
    traced, and keeps making progress."""
    python = once_python
    hb = str(tmp_path / "heartbeat")
    t = Target(python.path, target_script("heartbeat_target.py"), [hb], workdir=str(tmp_path))
    try:
        t.wait_for_file(hb, 60)
        failures = []
        start = time.monotonic()
        for i in range(N_DUMPS):
            r = run_tool(["dump", "--pid", t.pid, "--json"], timeout=60)
            if r.returncode != 0:
                failures.append("dump #%d exited %d: %s" % (i, r.returncode, r.stderr.decode()[-300:]))
            else:
                threads = json.loads(r.stdout)
                if not any(f.get("name") == "spin" for th in threads for f in th.get("frames", [])) and \
                        not any(f.get("name") == "busy_main" for th in threads for f in th.get("frames", [])):
                    failures.append("dump #%d: the busy main thread's frames are missing" % i)
            problems = pythons.stopped_or_traced(t.pid)
            if problems:
                # allow the kernel a moment to finish the detach
                time.sleep(0.05)
                problems = pythons.stopped_or_traced(t.pid)
            if problems:
                failures.append("after dump #%d: %s" % (i, problems))
            if len(failures) > 5:
                break
        elapsed = time.monotonic() - start
        assert t.alive(), "target died during the dumps:\n" + t.log()
        before = _read_counter(hb)
        time.sleep(0.5)
        after = _read_counter(hb)
        assert not failures, "\n".join(failures)
        assert pythons.proc_state(t.pid) not in ("t", "T"), "target left stopped"
        assert pythons.tracer_pid(t.pid) == 0, "target left traced"
        assert after > before, "the target's progress counter stopped (%d -> %d)" % (before, after)
        print("%d dumps in %.1fs (%.0f ms each)" % (N_DUMPS, elapsed, 1000 * elapsed / N_DUMPS))
    finally:
        t.stop()
