"""Native frames against gdb, on every interpreter of the matrix.

The target (tests/targets/native_threads.py) parks threads in C: sleep,
select, Lock.acquire, socket.recv, a ctypes qsort whose Python callback
blocks, a mutex in a gcc-built library, a C -> Python callback, a C
signal handler, and a thread started by C that Python never saw.  We pause
it, unwind every thread, detach; then gdb attaches to the same, still
blocked, target and every physical frame (gdb's inline and tail-call
frames are not physical: skipped) must have the same pc, and the same
function name wherever gdb names it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

import pythons
from test_native_support import GDB_SCRIPT, gdb_debug_dirs, gdb_stacks, parse_frames

from snapshot.native import native_stacks_with_reasons
from snapshot.native.merge import is_interpreter_module
from snapshot.process.live import LiveProcess

HERE = os.path.dirname(os.path.abspath(__file__))
C_SOURCE = os.path.join(HERE, "targets", "native_ext", "native_blocker.c")
NORMAL_FRAME, SIGTRAMP_FRAME = 0, 4   # gdb.NORMAL_FRAME, gdb.SIGTRAMP_FRAME
_SUFFIX = re.compile(r"(\.(cold|part|isra|constprop|lto_priv|localalias)(\.\d+)?)+$")


def _norm(name):
    if not name:
        return name
    return _SUFFIX.sub("", name.split("@")[0])


@pytest.fixture(scope="session")
def native_lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH: the blocking C library cannot be built")
    out = str(tmp_path_factory.mktemp("native_ext") / "libnative_blocker.so")
    subprocess.run(["gcc", "-O2", "-g", "-shared", "-fPIC", "-o", out, C_SOURCE, "-lpthread"],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def native_target(python, native_lib, tmp_path_factory):
    if shutil.which("gdb") is None:
        pytest.skip("gdb not on PATH: no oracle for native frames")
    workdir = str(tmp_path_factory.mktemp("native_" + python.id))
    truth_path = os.path.join(workdir, "truth.json")
    target = pythons.Target(python.path, pythons.target_script("native_threads.py"),
                            [truth_path, native_lib, "--busy"], workdir=workdir)
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            truth = json.load(f)
        pythons.wait_blocked(target.pid, [int(t) for r, t in truth["threads"].items() if r != "zlib"])
        target.truth = truth
        target.workdir = workdir
        yield target
    finally:
        target.stop()


def physical(gdb_frames):
    return [f for f in gdb_frames if f[1] in (NORMAL_FRAME, SIGTRAMP_FRAME)]


def names_of(frame, unwinder_modules):
    """Every name our symbol tables give the function at ``frame`` (aliases at its start)."""
    names = {frame.symbol}
    module = unwinder_modules.module_at(frame.address - 1)
    if module is not None and frame.symbol is not None:
        table = module.symbols
        found = table.address_of(frame.symbol)
        if found:
            names.update(table.aliases(found[0]))
    return {_norm(n) for n in names if n}


def compare(ours, theirs, modules):
    """Problems between our frames and gdb's physical frames of one thread."""
    problems = []
    gdb = physical(theirs)
    if [f.address for f in ours] != [g[0] for g in gdb]:
        problems.append("pcs differ:\n  ours %s\n  gdb  %s" % (
            " ".join("%x:%s" % (f.address, f.name) for f in ours),
            " ".join("%x:%s" % (g[0], g[2]) for g in gdb)))
        return problems
    for f, g in zip(ours, gdb):
        if g[1] == SIGTRAMP_FRAME:
            continue  # gdb calls it "<signal handler called>"
        gdb_name = _norm(g[2])
        if gdb_name == "??":
            if f.symbol is not None:
                problems.append("0x%x: gdb cannot name it, we say %s" % (f.address, f.symbol))
            continue
        ours_names = names_of(f, modules)
        if gdb_name not in ours_names and gdb_name.replace("__GI_", "", 1) not in ours_names:
            problems.append("0x%x: gdb %s (%s), ours %s" % (f.address, g[2], "debug info" if g[3] else "symbol",
                                                             f.name))
    return problems


def test_native_frames_equal_gdb(python, native_target):
    pid = native_target.pid
    process = LiveProcess(pid)
    with process.paused() as tids:
        result = native_stacks_with_reasons(process, tids)
    from snapshot.native import unwinder_for
    modules = unwinder_for(process).modules
    gdb = gdb_stacks(pid, native_target.workdir)
    roles = {int(t): r for r, t in native_target.truth["threads"].items()}
    problems = []
    assert set(gdb) == set(result), "threads differ: gdb %s ours %s" % (sorted(gdb), sorted(result))
    busy = int(native_target.truth["threads"]["zlib"])
    for tid, (frames, why) in sorted(result.items()):
        if tid == busy:
            continue
        for problem in compare(frames, gdb[tid], modules):
            problems.append("thread %d (%s, stopped: %s): %s" % (tid, roles.get(tid, "?"), why, problem))
    assert not problems, "\n".join(problems)
    # The stacks reach the thread's start, not a truncation.
    for tid, (frames, why) in result.items():
        assert frames and ("outermost" in why), "thread %d (%s) ended: %s" % (tid, roles.get(tid), why)


def test_busy_thread_loosely(python, native_target):
    """zlib.compress in a loop moves between our pause and gdb's: the thread's outer frames
    (where it was started and its Python loop) must still agree."""
    pid = native_target.pid
    busy = int(native_target.truth["threads"]["zlib"])
    process = LiveProcess(pid)
    with process.paused():
        frames, why = native_stacks_with_reasons(process, [busy])[busy]
    gdb = physical(gdb_stacks(pid, native_target.workdir)[busy])
    assert "outermost" in why, why
    assert [f.address for f in frames[-4:]] == [g[0] for g in gdb[-4:]], (frames[-6:], gdb[-6:])


def test_anonymous_perf_trampolines(python, native_lib, tmp_path):
    """3.12+ ``-X perf``: every Python call goes through a trampoline copied into anonymous
    memory without CFI; capstone recovers its CFA.  gdb is only a partial oracle here: its
    heuristic takes the trampoline's padding slot for a return address (a frame whose pc is not
    code, or a second trampoline frame in a row: left out) and often stops early, so gdb's frames
    must be a prefix of ours; beyond that every trampoline's caller must be interpreter code
    (``py_trampoline_evaluator``, or the function an LTO build inlined it into)."""
    if tuple(int(x) for x in python.version.split(".")[:2]) < (3, 12):
        pytest.skip("perf trampolines are 3.12+")
    truth_path = str(tmp_path / "truth.json")
    env = dict(os.environ, PYTHONPERFSUPPORT="1")
    target = pythons.Target(python.path, pythons.target_script("native_threads.py"),
                            [truth_path, native_lib], workdir=str(tmp_path), env=env)
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            truth = json.load(f)
        pythons.wait_blocked(target.pid, [int(t) for t in truth["threads"].values()])
        process = LiveProcess(target.pid)
        with process.paused() as tids:
            result = native_stacks_with_reasons(process, tids)
        executable = [(m.start, m.end, m.path.startswith("/")) for m in process.maps() if "x" in m.perms]
        gdb = gdb_stacks(target.pid, str(tmp_path))
    finally:
        target.stop()
    sleeper = int(truth["threads"]["sleep"])
    frames, why = result[sleeper]
    anonymous = [f for f in frames if not f.module]
    if not anonymous:
        pytest.skip("%s has no perf trampolines (built without perf support)" % python.id)
    assert all(f.how == "capstone" for f in anonymous), anonymous
    assert "outermost" in why, why
    problems = []
    for tid, (frames, why) in result.items():
        theirs = []
        previous_anonymous = False
        for g in physical(gdb[tid]):
            where = [named for a, b, named in executable if a <= g[0] < b]
            if not where:
                continue                      # gdb's invented frame: not code at all
            anonymous = not where[0]
            if anonymous and previous_anonymous:
                continue                      # ... or a stale trampoline address in its padding
            previous_anonymous = anonymous
            theirs.append(g[0])
        ours = [f.address for f in frames]
        callers = [frames[i + 1] for i, f in enumerate(frames[:-1]) if not f.module]
        if any(not is_interpreter_module(c.module) for c in callers):
            problems.append("thread %d: a trampoline called from outside the interpreter: %s" % (tid, callers))
        if "outermost" not in why:
            problems.append("thread %d stopped: %s" % (tid, why))
        if ours[:len(theirs)] != theirs or len(theirs) < 3:
            problems.append("thread %d: ours %s\n gdb %s" % (tid, [hex(f.address) for f in frames],
                                                            [hex(a) for a in theirs]))
    assert not problems, "\n".join(problems)


def test_disassembly_equals_gdb(python, native_target):
    """``disassemble`` around a native frame's pc and from a function's start: the same
    instructions (addresses and mnemonics) as gdb's ``x/i``, located by symbol."""
    from snapshot.native import disassemble, resolve_function
    pid = native_target.pid
    mutex = int(native_target.truth["threads"]["mutex"])
    process = LiveProcess(pid)
    with process.paused():
        frames = native_stacks_with_reasons(process, [mutex])[mutex][0]
        ours_function = resolve_function(process, "nb_block_on_mutex")
        listing_at_frame = disassemble(process, frames[1].address, 8)
        listing_function = disassemble(process, "nb_block_on_mutex", 6)
    assert ours_function is not None and ours_function[1].endswith("libnative_blocker.so")
    current = [i for i in listing_at_frame if i.is_current]
    assert len(current) == 1 and current[0].address == frames[1].address
    assert current[0].location.startswith(frames[1].symbol + "+0x")
    assert listing_function[0].address == ours_function[0] and listing_function[0].location == "nb_block_on_mutex"
    commands = []
    for start, count in ((listing_at_frame[0].address, len(listing_at_frame)), (ours_function[0], 6)):
        commands += ["-ex", "x/%di 0x%x" % (count, start)]
    out = subprocess.run(["gdb", "-nx", "-batch", "-p", str(pid), "-ex", "set disassembly-flavor intel"] + commands,
                         capture_output=True, text=True, timeout=120).stdout
    gdb_insns = []
    for line in out.splitlines():
        m = re.match(r"^(?:=>)?\s*0x([0-9a-f]+)(?: <[^>]*>)?:\s+(\S+)", line)
        if m:
            gdb_insns.append((int(m.group(1), 16), m.group(2)))
    ours = [(i.address, i.mnemonic) for i in listing_at_frame + listing_function]
    # gdb prints "endbr64"/"nop" like capstone; prefixes (rep/lock/bnd/notrack) are folded into the mnemonic by both
    assert [a for a, _ in ours] == [a for a, _ in gdb_insns], (ours, gdb_insns)
    assert [m.split()[0] for _, m in ours] == [m for _, m in gdb_insns], (ours, gdb_insns)


#: The C library calls ``time.sleep`` makes, newest interpreters first (3.11+: clock_nanosleep).
SLEEP_CALLS = ("clock_nanosleep", "select", "nanosleep")


def test_plt_stub_frame_equals_gdb(python, tmp_path):
    """A thread stopped by gdb on the interpreter's PLT stub for its sleep call: in the core gdb
    writes there, our innermost frame of that thread is ``clock_nanosleep@plt`` (or the stub of
    whatever time.sleep calls in this version) at gdb's pc, named as gdb names it (``info
    symbol $pc``), and the rest of the stack equals gdb's ``bt`` of the core."""
    if shutil.which("gdb") is None:
        pytest.skip("gdb not on PATH: no oracle for native frames")
    truth_path = str(tmp_path / "truth.json")
    core = str(tmp_path / "core")
    target = pythons.Target(python.path, pythons.target_script("native_plt_loop.py"), [truth_path],
                            workdir=str(tmp_path))
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            napper = json.load(f)["napper"]
        process = LiveProcess(target.pid)
        from snapshot.native import unwinder_for
        with process.paused():
            modules = unwinder_for(process).modules
            stubs = ["%s@plt" % call for call in SLEEP_CALLS
                     if any(m.symbols.address_of("%s@plt" % call) for m in modules.modules
                            if is_interpreter_module(m.path))]
        if not stubs:
            pytest.skip("%s: the interpreter calls no sleep function through a PLT" % python.id)
        out = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set auto-load off"] + gdb_debug_dirs() +
                             ["-p", str(target.pid), "-ex", "break '%s'" % stubs[0], "-ex", "continue",
                              "-ex", "echo @@PC\\n", "-ex", "p/x $pc", "-ex", "info symbol $pc",
                              "-ex", "thread", "-ex", "gcore " + core, "-ex", "detach"],
                             capture_output=True, text=True, timeout=300).stdout
    finally:
        target.stop()
    tail = out.split("@@PC\n", 1)
    assert len(tail) == 2 and os.path.exists(core), out[-3000:]
    pc = int(re.search(r"= (0x[0-9a-f]+)", tail[1]).group(1), 16)
    gdb_name = re.search(r"^(\S+) in section", tail[1], re.M).group(1)
    lwp = int(re.search(r"\(LWP (\d+)\)", tail[1]).group(1))
    assert gdb_name == stubs[0] and lwp == napper, tail[1][:2000]
    script = str(tmp_path / "bt.py")
    with open(script, "w") as f:
        f.write(GDB_SCRIPT)
    frames_out = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set auto-load off"] + gdb_debug_dirs() +
                                [python.path, core, "-ex", "source " + script],
                                capture_output=True, text=True, timeout=300).stdout
    theirs = physical(_parse_gdb(frames_out).get(lwp, []))
    assert theirs and theirs[0][0] == pc and _norm(theirs[0][2]) == _norm(stubs[0]), frames_out[-2000:]
    # the physical frames, read from the core by the tool's own CoreProcess
    from snapshot.process.core import CoreProcess
    process = CoreProcess(core, executable=python.path)
    try:
        frames, why = native_stacks_with_reasons(process, [napper])[napper]
    finally:
        process.close()
    assert frames[0].symbol == stubs[0] and frames[0].address == pc and frames[0].offset == 0, frames[:2]
    if len(theirs) >= 2 and theirs[1][0] == 0:
        # gcore saved zeros at this thread's stack pointer (the tool warns: memory next to a guard
        # page); gdb then reads a return address of 0 from the core as we do
        assert len(frames) == 1 and why == "return address 0", (why, frames)
    else:
        common = min(len(frames), len(theirs))
        assert common >= 2 and [f.address for f in frames[:common]] == [g[0] for g in theirs[:common]], (
            why, [f.describe() for f in frames], [(hex(g[0]), g[2]) for g in theirs])
    # merged, as `dump --core --native` shows it (the stub is the interpreter calling out: not hidden)
    for flag in ("--native", "--native-all"):
        result = pythons.run_tool(["dump", "--core", core, "--executable", python.path, flag, "--json"],
                                  timeout=300)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        data = json.loads(result.stdout)
        threads = data["threads"] if isinstance(data, dict) else data
        (thread,) = [t for t in threads if t.get("os_thread_id") == napper]
        ours = [f["address"] for f in thread["frames"] if f.get("is_native")]
        if thread.get("native_error"):
            # cannot be merged (a stripped build without its debug files; a stack gcore could
            # not save): the Python frames alone, never a guessed interleaving
            assert not ours and thread["frames"][0]["name"] == "nap", thread
            continue
        first = thread["frames"][0]
        assert first.get("is_native") and first["name"] == stubs[0] and first["address"] == pc, thread["frames"][:3]
        assert is_interpreter_module(first["module"])
        # the C frames are gdb's, in gdb's order (with --native-all: all of gdb's frames but the
        # eval-loop calls, which the Python frames replace; --native also hides the plumbing)
        gdb_pcs = [g[0] for g in theirs]
        it = iter(gdb_pcs)
        assert all(any(a == b for b in it) for a in ours), ([hex(a) for a in ours], [hex(a) for a in gdb_pcs])
        if flag == "--native-all" and "outermost" in why:
            evals = [g[0] for g in theirs if "EvalFrame" in g[2]]
            assert ours == [a for a in gdb_pcs if a not in evals], (
                [hex(a) for a in ours], [(hex(g[0]), g[2]) for g in theirs])

def _parse_gdb(out):
    """{tid: [(pc, kind, name, from_debug_info)]} from GDB_SCRIPT's output (a core's threads)."""
    return parse_frames(out)
