"""``--native`` end to end, on every interpreter: dump, record, the REPL, gdb/lldb.

The target (tests/targets/native_threads.py, without its busy thread) parks
every thread in C.  While it stays blocked:

* ``dump --native --json`` is compared with gdb's backtrace of the same
  threads: every native frame we show is one of gdb's physical frames (same
  pc, same name where gdb names it from the same symbol tables), in gdb's
  order, and every group of Python frames sits exactly where gdb has the
  eval-loop frame that runs it (``_PyEval_EvalFrameDefault``; 2.7: ``PyEval_EvalFrameEx``),
  and that frame's argument (as gdb reads it from the build's DWARF) is our group's
  innermost Python frame (same code name and file);
* the Python frames equal those of the plain ``dump --json`` (name, file, line);
* each native frame has ``is_native``, ``address``, ``module`` (the library's
  path) and ``name``; Python frames have none of the native fields;
* ``--native-all`` adds the thread started by C; ``--nonblocking --native`` is a
  usage error; ``record --native`` writes C frames; REPL ``bt --native``/``disas``.

The sid 3.14/3.15 builds are stripped: their eval loop has a name only with
the -dbg packages' debug files (tests/tools/get-pythons.sh unpacks them,
tests/pythons.py points PYSPY_REPL_DEBUG_DIRS at them); without, the merge
refuses and the tests say so (skip with the reason).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

import pythons
from test_native_gdb import NORMAL_FRAME, SIGTRAMP_FRAME, _norm, native_lib  # noqa: F401
from test_native_support import gdb_eval_codes, gdb_stacks
from test_debuggers import loaders  # noqa: F401 (fixture)

from layouts import get_layout
from snapshot.native.merge import ANY_VERSION, eval_names_of, is_eval_frame

_NEAREST = re.compile(r"^(.*)\+0x[0-9a-f]+$")


class _Named:
    """Just enough of a NativeFrame for ``is_eval_frame`` (gdb names the frame)."""

    def __init__(self, symbol):
        self.symbol = symbol
        self.module = ""


@pytest.fixture(scope="module")
def blocked(python, native_lib, tmp_path_factory):
    """The blocked target, its three dumps (plain, --native, --native-all) and gdb's stacks."""
    if shutil.which("gdb") is None:
        pytest.skip("gdb not on PATH: no oracle for native frames")
    workdir = str(tmp_path_factory.mktemp("native_dump_" + python.id))
    truth_path = os.path.join(workdir, "truth.json")
    target = pythons.Target(python.path, pythons.target_script("native_threads.py"), [truth_path, native_lib],
                            workdir=workdir)
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            target.truth = json.load(f)
        pythons.wait_blocked(target.pid, [int(t) for t in target.truth["threads"].values()])
        target.workdir = workdir
        target.dumps = {}
        for mode in ("plain", "--native", "--native-all"):
            args = ["dump", "--pid", target.pid, "--json"] + ([mode] if mode != "plain" else [])
            r = pythons.run_tool(args)
            assert r.returncode == 0, (mode, r.stderr.decode())
            target.dumps[mode] = json.loads(r.stdout.decode())
        target.gdb = gdb_stacks(target.pid, workdir)
        target.gdb_codes = gdb_eval_codes(target.pid, workdir)
        yield target
    finally:
        target.stop()


def _merged_or_skip(python, dump):
    errors = {t["thread_name"]: t.get("native_error") for t in dump if t.get("native_error")}
    if errors:
        if python.flavour == "sid" and pythons.sid_debug_dir() is None:
            pytest.skip("%s is stripped and its -dbg debug files are not unpacked (tests/tools/get-pythons.sh): "
                        "the eval loop has no name, so merging refuses: %s" % (python.id, errors))
        raise AssertionError("threads not merged: %s" % errors)


def _tokens_ours(frames):
    """Our merged frames as gdb would list them: a native frame is its pc, each group of Python
    frames (up to and including an entry frame) one eval-loop call."""
    out = []
    for f in frames:
        if f.get("is_native"):
            out.append(("pc", f["address"], f["name"]))
        elif f["is_entry"]:
            out.append(("eval",))
    return out


def _tokens_gdb(frames, names=ANY_VERSION):
    out = []
    for pc, kind, name, _ in frames:
        if kind not in (NORMAL_FRAME, SIGTRAMP_FRAME):
            continue   # inline and tail-call frames are not physical
        if is_eval_frame(_Named(_norm(name)), names):
            out.append(("eval",))
        else:
            out.append(("pc", pc, name, kind))
    return out


def test_python_frames_sit_at_their_eval_frames(python, blocked):
    """Each group of our Python frames is the one gdb's eval-loop frame runs: the frame argument
    of gdb's n-th eval frame (innermost first) runs the code of our n-th group's innermost frame
    (before 3.11 a group is one frame; later one eval call runs several, ``frame`` the innermost)."""
    native = blocked.dumps["--native"]
    _merged_or_skip(python, native)
    problems, compared = [], 0
    for thread in native:
        groups, current = [], []
        for f in thread["frames"]:
            if f.get("is_native"):
                continue
            current.append(f)
            if f["is_entry"]:
                groups.append(current)
                current = []
        theirs = blocked.gdb_codes.get(thread["os_thread_id"], [])
        if len(groups) != len(theirs):
            problems.append("%s: %d Python frame groups, gdb has %d eval-loop frames" % (
                thread["thread_name"], len(groups), len(theirs)))
            continue
        for group, (pc, co_name, co_filename) in zip(groups, theirs):
            if co_name is None:
                continue       # gdb cannot read this frame's argument
            compared += 1
            inner = group[0]
            if inner["name"].rsplit(".", 1)[-1] != co_name or inner["filename"] != co_filename:
                problems.append("%s: eval frame 0x%x runs %s (%s), ours %s (%s)" % (
                    thread["thread_name"], pc, co_name, co_filename, inner["name"], inner["filename"]))
    assert not problems, "\n".join(problems)
    if not compared:
        pytest.skip("gdb reads no eval-loop frame argument on %s (optimized out everywhere)" % python.id)


def test_json_fields_and_python_frames(python, blocked):
    plain = {t["thread_id"]: t for t in blocked.dumps["plain"]}
    native = blocked.dumps["--native"]
    assert {t["thread_id"] for t in native} == set(plain)
    for thread in native:
        frames = thread["frames"]
        for f in frames:
            if f.get("is_native"):
                assert isinstance(f["address"], int) and f["address"] > 0, f
                assert f["module"].startswith("/") or f["module"] == "", f
                assert f["name"] and f["line"] == 0, f
            else:
                assert "address" not in f and f["module"] is None, f
        python_frames = [(f["name"], f["filename"], f["line"]) for f in frames if not f.get("is_native")]
        assert python_frames == [(f["name"], f["filename"], f["line"]) for f in plain[thread["thread_id"]]["frames"]]
    _merged_or_skip(python, native)
    for thread in native:
        frames = thread["frames"]
        # innermost first, no marker frames: the innermost frame is the C function the thread waits in
        assert frames and frames[0].get("is_native"), (thread["thread_name"], frames[:2])
        assert not any(f["name"].startswith("<") and f.get("is_native") for f in frames)


def test_merged_stacks_equal_gdb(python, blocked):
    native = blocked.dumps["--native"]
    _merged_or_skip(python, native)
    names = eval_names_of(get_layout(python.version_tuple))   # the version's eval loop
    problems = []
    for thread in native:
        tid = thread["os_thread_id"]
        ours, theirs = _tokens_ours(thread["frames"]), _tokens_gdb(blocked.gdb[tid], names)
        # every eval-loop call of gdb's stack runs one group of our Python frames
        if sum(1 for t in ours if t[0] == "eval") != sum(1 for t in theirs if t[0] == "eval"):
            problems.append("%s: %d Python frame groups, gdb has %d eval-loop frames" % (
                thread["thread_name"], sum(1 for t in ours if t[0] == "eval"),
                sum(1 for t in theirs if t[0] == "eval")))
            continue
        # ... in gdb's order, with our native frames (same pcs) between the same eval frames
        position = 0
        for token in ours:
            while position < len(theirs) and (theirs[position][:2] if token[0] == "pc" else theirs[position][:1]) \
                    != (token[:2] if token[0] == "pc" else token[:1]):
                position += 1
            if position == len(theirs):
                problems.append("%s: %s is not where gdb has it:\n  ours %s\n  gdb  %s" % (
                    thread["thread_name"], token, ours, theirs))
                break
            gdb_token = theirs[position]
            if token[0] == "pc" and gdb_token[3] == NORMAL_FRAME:
                gdb_name = _norm(gdb_token[2])
                name = token[2]
                nearest = _NEAREST.match(name)
                if gdb_name == "??":
                    if not nearest and not name.startswith("0x"):
                        problems.append("%s: 0x%x gdb cannot name it, we say %s" % (thread["thread_name"],
                                                                                  token[1], name))
                elif not nearest and _norm(name) != gdb_name and gdb_name.replace("__GI_", "", 1) != _norm(name):
                    # aliases at one address: gdb may pick another of the names (checked in test_native_gdb)
                    if not _same_function(blocked.pid, token[1], name, gdb_name):
                        problems.append("%s: 0x%x gdb %s, ours %s" % (thread["thread_name"], token[1],
                                                                       gdb_token[2], name))
            position += 1
    assert not problems, "\n".join(problems)


def _same_function(pid, address, ours, gdb_name):
    """Whether ``gdb_name`` is another name of the symbol we call ``ours`` (an alias)."""
    from snapshot.native import unwinder_for
    from snapshot.process.live import LiveProcess
    modules = unwinder_for(LiveProcess(pid)).modules
    module = modules.module_at(address - 1)
    if module is None:
        return False
    found = module.symbols.address_of(ours)
    return bool(found) and gdb_name in {_norm(n) for n in module.symbols.aliases(found[0])}


def test_native_all_shows_c_thread(python, blocked):
    c_tid = int(blocked.truth["threads"]["c_thread"])
    assert c_tid not in {t["os_thread_id"] for t in blocked.dumps["--native"]}
    threads = {t["os_thread_id"]: t for t in blocked.dumps["--native-all"]}
    assert c_tid in threads, sorted(threads)
    names = [f["name"] for f in threads[c_tid]["frames"]]
    assert all(f.get("is_native") for f in threads[c_tid]["frames"])
    assert "c_thread_wait" in names and "c_thread_main" in names, names
    # the interpreter's plumbing is there too for Python threads
    _merged_or_skip(python, blocked.dumps["--native-all"])
    sleeper = threads[int(blocked.truth["threads"]["sleep"])]
    shown = sum(1 for f in sleeper["frames"] if f.get("is_native"))
    plain = [t for t in blocked.dumps["--native"] if t["os_thread_id"] == sleeper["os_thread_id"]][0]
    assert shown > sum(1 for f in plain["frames"] if f.get("is_native"))


def test_text_output(python, blocked):
    r = pythons.run_tool(["dump", "--pid", blocked.pid, "--native"])
    assert r.returncode == 0, r.stderr.decode()
    text = r.stdout.decode()
    assert re.search(r"^    (__GI___)?(__)?(lll_lock_wait|pthread_mutex_lock)\w* \(libc\.so\.6\)$", text, re.M) or \
        re.search(r"^    \S+ \(libc\.so\.6\)$", text, re.M), text
    assert re.search(r"^    mutexer \(native_threads\.py:\d+\)$", text, re.M), text


def test_nonblocking_native_is_a_usage_error(once_python, blocked):
    for command in (["dump"], ["record", "-d", "1", "-o", os.path.join(blocked.workdir, "x.txt"), "-f", "raw"]):
        r = pythons.run_tool(command + ["--pid", blocked.pid, "--native", "--nonblocking"])
        assert r.returncode == 2, (command, r.returncode, r.stderr.decode())
        assert "--nonblocking" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_record_native_writes_c_frames(python, blocked):
    out = {}
    for fmt in ("raw", "speedscope"):
        path = os.path.join(blocked.workdir, "native." + fmt)
        r = pythons.run_tool(["record", "--pid", blocked.pid, "--native", "--idle", "-r", "20", "-d", "1",
                              "-f", fmt, "-o", path])
        assert r.returncode == 0, r.stderr.decode()
        with open(path) as f:
            out[fmt] = f.read()
    assert re.search(r"\(libnative_blocker\.so\)", out["raw"]), out["raw"][:2000]
    assert re.search(r";mutexer \(native_threads\.py:\d+\);", out["raw"]), out["raw"][:2000]
    frames = json.loads(out["speedscope"])["shared"]["frames"]
    names = {f["name"] for f in frames}
    assert {"c_thread_wait", "mutexer"} <= names or {"nb_call_back", "mutexer"} <= names, sorted(names)
    assert any(f.get("file", "").endswith("libnative_blocker.so") for f in frames), frames[:5]


def test_repl_bt_native_and_disas(python, blocked):
    mutex = blocked.truth["threads"]["mutex"]
    r = pythons.run_tool(["--pid", blocked.pid, "-c", "thread %s" % mutex, "-c", "bt --native", "-c", "disas 6",
                          "-c", "disas nb_block_on_mutex 4", "-c", "native on", "-c", "bt", "-c", "native off",
                          "-c", "bt"])
    text = r.stdout.decode()
    assert r.returncode == 0, (text, r.stderr.decode())
    parts = text.split('Thread %s' % mutex)
    assert len(parts) == 4, text
    native_bt, on_bt, off_bt = parts[1], parts[2], parts[3]
    assert re.search(r"#\d+\s+mutexer \(native_threads\.py:\d+\)", native_bt), native_bt
    assert re.search(r"#0\s+\S+ \(libc\.so\.6\)", native_bt), native_bt
    assert re.search(r"#0\s+\S+ \(libc\.so\.6\)", on_bt), on_bt
    assert "libc.so.6" not in off_bt and "mutexer" in off_bt
    assert re.search(r"^=> 0x[0-9a-f]{16}( <\S+>)?: ", text, re.M), text
    assert re.search(r"^=> 0x[0-9a-f]{16} <nb_block_on_mutex>: ", text, re.M), text
    assert "native frames: on" in text and "native frames: off" in text


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_debugger_dump_native(once_python, native_lib, loaders, debugger, tmp_path):
    """``pyspy dump --native --json`` inside gdb/lldb (registers from the debugger) equals the CLI's."""
    from test_debuggers import _need, json_arrays, run_debugger, settle
    _need(debugger)
    truth_path = str(tmp_path / "truth.json")
    target = pythons.Target(once_python.path, pythons.target_script("native_threads.py"), [truth_path, native_lib],
                            workdir=str(tmp_path))
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            truth = json.load(f)
        pythons.wait_blocked(target.pid, [int(t) for t in truth["threads"].values()])
        r = pythons.run_tool(["dump", "--pid", target.pid, "--json", "--native"])
        assert r.returncode == 0, r.stderr.decode()
        live = json.loads(r.stdout.decode())
        out, err, parts = run_debugger(debugger, loaders[debugger], ["pyspy dump --json --native"], pid=target.pid)
        arrays = json_arrays(parts[0])
        assert len(arrays) == 1, (parts[0][-3000:], err[-3000:])
        assert not settle(target.pid, debugger)
    finally:
        target.stop()

    def shape(dump):
        return {t["os_thread_id"]: [(f["name"], f.get("address"), f["line"]) for f in t["frames"]] for t in dump}
    assert shape(arrays[0]) == shape(live)


def test_core_dump_native(once_python, native_lib, tmp_path):
    """The same code path over a core file: ``dump --core CORE --native --json`` of a gcore'd
    target equals the live ``dump --native --json`` taken just before (registers from NT_PRSTATUS)."""
    try:
        from snapshot.process.core import CoreProcess  # noqa: F401
    except ImportError:
        pytest.skip("snapshot.process.core (CoreProcess) is not on this branch yet")
    if shutil.which("gcore") is None:
        pytest.skip("gcore (from gdb) is not installed")
    truth_path = str(tmp_path / "truth.json")
    target = pythons.Target(once_python.path, pythons.target_script("native_threads.py"), [truth_path, native_lib],
                            workdir=str(tmp_path))
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            truth = json.load(f)
        pythons.wait_blocked(target.pid, [int(t) for t in truth["threads"].values()])
        r = pythons.run_tool(["dump", "--pid", target.pid, "--json", "--native-all"])
        assert r.returncode == 0, r.stderr.decode()
        live = json.loads(r.stdout.decode())
        prefix = str(tmp_path / "core")
        subprocess.run(["gcore", "-o", prefix, str(target.pid)], capture_output=True, timeout=300, check=True)
    finally:
        target.stop()
    core = "%s.%d" % (prefix, target.pid)
    try:
        r = pythons.run_tool(["dump", "--core", core, "--json", "--native-all"], timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        dead = json.loads(r.stdout.decode())
    finally:
        os.unlink(core)

    def shape(dump):
        return {t["os_thread_id"]: [(f["name"], f.get("address"), f["line"]) for f in t["frames"]] for t in dump}
    assert shape(dead) == shape(live)
    assert any(f.get("is_native") for t in dead for f in t["frames"])


def test_gil_wait_status_counts_as_active(python, tmp_path):
    """Two threads contending for the GIL: in a native snapshot the waiting one says so in its
    status and is active, not idle (it would run if it had the GIL)."""
    import snapshot
    from snapshot.native.status import WAITING_FOR_GIL
    truth_path = str(tmp_path / "truth.json")
    target = pythons.Target(python.path, pythons.target_script("native_gil.py"), [truth_path], workdir=str(tmp_path))
    seen = []
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            tids = {int(t) for t in json.load(f)["threads"].values()}
        with snapshot.attach(target.pid) as attached:
            for _ in range(60):   # the spinners swap the GIL every 5 ms: a few pauses suffice
                snap = attached.snapshot(native=True)
                spinners = [t for t in snap.threads if t.native_id in tids]
                seen.append([(t.status, t.is_idle) for t in spinners])
                waiting = [t for t in spinners if t.status == WAITING_FOR_GIL]
                if waiting:
                    break
    finally:
        target.stop()
    if not waiting:
        if python.flavour != "pyenv" and not (python.flavour == "sid" and pythons.sid_debug_dir()):
            pytest.skip("%s is stripped: the GIL wait could not be named in 60 snapshots (%s)" % (
                python.id, seen[-3:]))
        raise AssertionError("no thread seen waiting for the GIL: %s" % seen)
    assert all(not t.is_idle for t in waiting), seen[-1]
    r = waiting[0].to_dict()
    assert r["status"] == WAITING_FOR_GIL and r["active"] is True
