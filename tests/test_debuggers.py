"""End to end: the gdb and lldb extensions, live and on cores, against the CLI's live dump.

For every interpreter of the matrix a ``dump_target.py --no-busy`` target
(every thread blocked, so its state is the same for every reader) writes its
TRUTH; then:

* ``gdb -p PID -batch -ex 'source $(pyspy-repl gdb-path)' -ex 'pyspy dump --json --locals'``,
  the same with ``lldb-16 -p PID -b -o 'command script import $(pyspy-repl lldb-path)'``,
  and both again on a core of the same process made with ``gcore``: each prints exactly one
  JSON array, equal to the CLI's live ``dump --json --locals`` and matching TRUTH (100% of
  stacks and locals);
* the navigation commands in one debugger session: ``py-bt``, ``pyspy threads``,
  ``pyspy thread NAME``, ``pyspy locals``/``py-locals``, ``pyspy print``/``py-print``,
  ``pyspy up``/``down``; commands needing a live process say why they are unavailable.

The debuggers run without PYTHONPATH: the loader script alone must make the package
and its dependencies importable in their embedded system Python.  lldb-16 is installed
with apt when missing (as root, once per session); otherwise its tests skip with the reason.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import pythons
from pythons import Target, run_tool, target_script
from test_dump_e2e import compare_dump, report

LLDB = "lldb-16"
MARK = "@@pyspy-test %d@@"
SESSION_TIMEOUT = 300


# --------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------
_LLDB_PROBLEM = None


def _install_lldb() -> str:
    """apt-get install lldb-16 where it is missing (root only); '' or why it could not be done."""
    problem = ""
    if shutil.which(LLDB) is None:
        if os.geteuid() != 0:
            problem = "%s is not installed and the tests are not root (apt-get install lldb-16 python3-lldb-16)" % LLDB
        else:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            try:
                r = subprocess.run(["apt-get", "install", "-y", "-q", "lldb-16", "python3-lldb-16"],
                                   capture_output=True, text=True, timeout=900, env=env)
                if r.returncode != 0:
                    problem = "apt-get install lldb-16 python3-lldb-16 failed: %s" % (
                        " | ".join(r.stderr.strip().splitlines()[-2:]))
            except (OSError, subprocess.SubprocessError) as e:
                problem = "apt-get install lldb-16 could not run: %s" % e
    return problem


def _lldb_problem():
    """None when lldb-16 with its Python works (installing it once if missing), else why not."""
    global _LLDB_PROBLEM
    if _LLDB_PROBLEM is not None:
        return _LLDB_PROBLEM or None
    problem = ""
    with pythons.machine_lock("apt-get"):   # another worker may be installing it right now
        problem = _install_lldb()
    if not problem:
        try:
            r = subprocess.run([LLDB, "-b", "-o", "script import lldb; print('lldb-python-ok')"],
                               capture_output=True, text=True, timeout=120)
            if "lldb-python-ok" not in r.stdout:
                problem = "%s cannot run its Python: %s" % (LLDB, (r.stderr.strip().splitlines() or ["?"])[-1])
        except (OSError, subprocess.SubprocessError) as e:
            problem = "%s does not run: %s" % (LLDB, e)
    _LLDB_PROBLEM = problem
    return problem or None


def _need(debugger):
    if debugger == "gdb":
        if shutil.which("gdb") is None:
            pytest.skip("gdb is not installed (apt-get install gdb)")
    else:
        problem = _lldb_problem()
        if problem:
            pytest.skip(problem)


@pytest.fixture(scope="session")
def loaders():
    """{"gdb": path, "lldb": path} from the real subcommands (which also record the site dirs)."""
    paths = {}
    for debugger in ("gdb", "lldb"):
        r = run_tool(["%s-path" % debugger])
        out = r.stdout.decode()
        assert r.returncode == 0, "%s-path exited %d: %s" % (debugger, r.returncode, r.stderr.decode())
        lines = out.strip().splitlines()
        assert lines and os.path.isfile(lines[-1]), "%s-path's last line is not a file: %r" % (debugger, out)
        paths[debugger] = lines[-1]
    return paths


def _debugger_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)          # the loader alone must find everything
    env.pop("PYTHONHOME", None)
    env["PYTHONPYCACHEPREFIX"] = pythons.tool_env()["PYTHONPYCACHEPREFIX"]
    return env


def run_debugger(debugger, loader, commands, pid=None, core=None, executable=None):
    """One batch session; returns (stdout, stderr, [stdout of each command])."""
    if debugger == "gdb":
        cmd = ["gdb", "-nx", "-batch"]
        cmd += ["-p", str(pid)] if pid else [executable, core]
        cmd += ["-ex", "source " + loader]
        for i, line in enumerate(commands):
            cmd += ["-ex", "echo %s\\n" % (MARK % i), "-ex", line]
        cmd += ["-ex", "echo %s\\n" % (MARK % len(commands))]
    else:
        cmd = [LLDB, "--no-lldbinit", "-b"]
        cmd += ["-p", str(pid)] if pid else ["-c", core, executable]
        cmd += ["-o", "command script import " + loader]
        for i, line in enumerate(commands):
            cmd += ["-o", "script print(%r)" % (MARK % i), "-o", line]
        cmd += ["-o", "script print(%r)" % (MARK % len(commands))]
    r = subprocess.run(cmd, capture_output=True, timeout=SESSION_TIMEOUT, env=_debugger_env(), cwd="/tmp")
    out, err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    parts = []
    for i in range(len(commands)):
        start, end = out.find("\n" + MARK % i + "\n"), out.find("\n" + MARK % (i + 1) + "\n")
        if i == len(commands) - 1 and end < 0:
            end = len(out)        # a failing last command ends an lldb batch
        assert start >= 0 and end > start, "%s session lost command %d (%r):\nstdout:\n%s\nstderr:\n%s" % (
            debugger, i, commands[i], out[-3000:], err[-3000:])
        chunk = out[start + len(MARK % i) + 2:end + 1]
        if debugger == "lldb":   # drop lldb's echo of the commands
            chunk = "".join(l for l in chunk.splitlines(True) if not l.startswith("(lldb) "))
        parts.append(chunk)
    return out, err, parts


def json_arrays(text):
    """Every JSON array that starts at the beginning of a line of ``text``."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    while True:
        index = text.find("[", position)
        if index < 0:
            return found
        if index == 0 or text[index - 1] == "\n":
            try:
                value, end = decoder.raw_decode(text, index)
            except ValueError:
                position = index + 1
                continue
            if isinstance(value, list):
                found.append(value)
                position = end
                continue
        position = index + 1


def settle(pid, debugger):
    """After a session: the target runs on, untraced and not stopped (lldb may leave a stop
    behind on detach, as memray notes; that one is sent SIGCONT, as memray does)."""
    deadline = time.monotonic() + 15
    while pythons.stopped_or_traced(pid) and time.monotonic() < deadline:
        if debugger == "lldb" and not any("traced" in p for p in pythons.stopped_or_traced(pid)):
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    return pythons.stopped_or_traced(pid)


# --------------------------------------------------------------------------
# the target, its live dump and its core
# --------------------------------------------------------------------------
class Subject:
    def __init__(self, python, workdir):
        self.truth_path = os.path.join(workdir, "truth.json")
        self.target = Target(python.path, target_script("dump_target.py", python),
                             [self.truth_path, "--workdir", workdir, "--no-busy"], workdir=workdir)
        self.workdir = workdir
        self.truth = self.target.wait_truth(self.truth_path, timeout=90)
        self.pid = self.target.pid
        self._core = None
        self._kernel_core = None
        r = run_tool(["dump", "--pid", self.pid, "--json", "--locals"])
        assert r.returncode == 0, r.stderr.decode()
        self.live = json.loads(r.stdout.decode())

    def core(self):
        if self._core is None:
            if shutil.which("gcore") is None:
                pytest.skip("gcore (from gdb) is not installed")
            prefix = os.path.join(self.workdir, "gcore")
            r = subprocess.run(["gcore", "-o", prefix, str(self.pid)], capture_output=True, timeout=300)
            path = "%s.%d" % (prefix, self.pid)
            assert r.returncode == 0 and os.path.exists(path), "gcore failed: %s" % r.stderr.decode()[-2000:]
            self._core = path
        return self._core

    def kernel_core(self):
        """A core written by the kernel (SIGABRT, RLIMIT_CORE raised): ends the target."""
        if self._kernel_core is None:
            import resource
            try:
                with open("/proc/sys/kernel/core_pattern") as fh:
                    pattern = fh.read().strip()
            except OSError as e:
                pytest.skip("cannot read core_pattern: %s" % e)
            if pattern not in ("core", "core.%p"):
                pytest.skip("kernel.core_pattern is %r (cores go elsewhere); need 'core'" % pattern)
            resource.prlimit(self.pid, resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            os.kill(self.pid, signal.SIGABRT)
            self.target.proc.wait(120)
            for name in ("core.%d" % self.pid, "core"):
                path = os.path.join(self.workdir, name)
                if os.path.exists(path):
                    self._kernel_core = path
                    break
            else:
                pytest.skip("the kernel wrote no core into %s (exit %s)" % (self.workdir, self.target.proc.returncode))
        return self._kernel_core

    @property
    def executable(self):
        return os.path.realpath(self.truth["executable"])

    def stop(self):
        self.target.stop()
        for path in (self._core, self._kernel_core):
            if path and os.path.exists(path):
                os.unlink(path)


@pytest.fixture(scope="module")
def subject(python, tmp_path_factory):
    s = Subject(python, str(tmp_path_factory.mktemp("dbg-" + python.id)))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def kernel_subject(python, tmp_path_factory):
    """A second target for the kernel core, which kills it (so the other tests may run in any order)."""
    s = Subject(python, str(tmp_path_factory.mktemp("dbg-kernel-" + python.id)))
    try:
        yield s
    finally:
        s.stop()


def _check_dump(python, subject, debugger, source, out, err, parts):
    arrays = json_arrays(parts[0])
    assert len(arrays) == 1, "%s (%s) printed %d JSON arrays for `pyspy dump --json`:\n%s\nstderr:\n%s" % (
        debugger, source, len(arrays), parts[0][:3000], err[-3000:])
    assert len(json_arrays(out)) == 1, "%s (%s): more than one JSON array on stdout" % (debugger, source)
    dump = arrays[0]
    stats = {}
    problems = compare_dump(subject.truth, dump, check_locals=True, stats=stats)
    report(problems, "%s %s (%s) pyspy dump --json --locals vs TRUTH (%s)" % (python.id, debugger, source, stats))
    assert stats["threads"] == len(subject.truth["threads"])
    if dump != subject.live:
        live = {t["thread_id"]: t for t in subject.live}
        diffs = []
        for t in dump:
            other = live.get(t["thread_id"])
            if other != t:
                keys = sorted(k for k in t if other is None or t[k] != other.get(k))
                diffs.append("thread %r differs in %s" % (t["thread_name"], keys))
        report(diffs or ["dumps differ"], "%s %s (%s) dump vs the CLI's live dump" % (python.id, debugger, source))


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_live_dump_json(python, subject, loaders, debugger):
    _need(debugger)
    out, err, parts = run_debugger(debugger, loaders[debugger], ["pyspy dump --json --locals"], pid=subject.pid)
    problems = settle(subject.pid, debugger)
    _check_dump(python, subject, debugger, "live", out, err, parts)
    assert subject.target.alive()
    assert not problems, "target left stopped or traced after %s: %s" % (debugger, problems)


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_core_dump_json(python, subject, loaders, debugger):
    _need(debugger)
    if debugger == "lldb" and python.minor in ("3.6", "3.7"):
        pytest.skip("%s: lldb reading a core of 3.6/3.7 cannot read the C Task type's name (its bytes in "
                    "_asyncio's mapping are 'not readable in the lldb inferior'); gdb reads the same core "
                    "exactly" % python.id)
    lossy = gcore_loses_memory(subject.pid)
    core = subject.core()
    out, err, parts = run_debugger(debugger, loaders[debugger], ["pyspy dump --json --locals"], core=core,
                                   executable=subject.executable)
    try:
        _check_dump(python, subject, debugger, "gcore core", out, err, parts)
    except (AssertionError, pytest.fail.Exception):
        if lossy:
            pytest.xfail(lossy)
        raise


def gcore_loses_memory(pid):
    """Why a ``gcore`` core of ``pid`` misses memory, or None.

    glibc >= 2.41 puts thread-stack guard pages *inside* rw-p mappings
    (MADV_GUARD_INSTALL, kernel >= 6.13): reading such a mapping whole fails,
    and gdb's gcore then writes zeros for the chunk it could not read, losing
    the top of the neighbouring thread stack (where CPython keeps its entry frames).
    """
    try:
        with open("/proc/%d/maps" % pid) as fh:
            lines = fh.read().splitlines()
        fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    except OSError:
        return None
    try:
        for line in lines:
            parts = line.split()
            if len(parts) < 5 or parts[1] != "rw-p" or len(parts) > 5:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if end - start > 64 << 20:
                continue
            try:
                os.pread(fd, end - start, start)
            except OSError:
                return ("gcore zero-fills the anonymous mapping %s, which holds guard pages "
                        "(MADV_GUARD_INSTALL, glibc >= 2.41 thread stacks): the core lacks stack memory" % parts[0])
    finally:
        os.close(fd)
    return None


def _thread(truth, role):
    return next(t for t in truth["threads"] if t["role"] == role)


def _frame_text(frame, full=False):
    filename = frame["filename"] if full else os.path.basename(frame["filename"])
    return "%s (%s:%d)" % (frame["function"], filename, frame["line"])


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_navigation(python, subject, loaders, debugger):
    _need(debugger)
    truth = subject.truth
    main, zoo, rec = _thread(truth, "main"), _thread(truth, "locals-zoo"), _thread(truth, "recursion")
    sleeper = _thread(truth, "sleep")
    # which thread the debugger selected on attaching (its choice, not ours: lldb takes the first
    # thread to report its stop, which on a busy machine need not be the main one)
    selected = "thread info" if debugger == "lldb" else "thread"
    commands = [selected, "py-bt", "pyspy threads", "pyspy thread %d" % sleeper["native_id"], "pyspy thread locals-zoo", "pyspy locals", "py-locals",
                "pyspy print s_ascii", "py-print small", "pyspy print lst[3][1]",
                "pyspy thread recursion-500", "pyspy up", "pyspy up 2", "pyspy down", "pyspy bt",
                "pyspy frame 0",
                "pyspy record -o /tmp/x.json"]   # last: lldb -b stops at the first failing command
    if debugger == "gdb":   # completion of thread names and of the selected frame's locals
        at = commands.index("pyspy thread locals-zoo") + 1
        commands[at:at] = ["complete pyspy print s_asc", "complete pyspy thread sle"]
    out, err, parts = run_debugger(debugger, loaders[debugger], commands, pid=subject.pid)
    problems = settle(subject.pid, debugger)
    got = dict(zip(commands, parts))
    where = "%s %s" % (python.id, debugger)
    if debugger == "gdb":
        assert got["complete pyspy print s_asc"].split() == ["pyspy", "print", "s_ascii"], (where, got)
        assert "pyspy thread sleeper" in got["complete pyspy thread sle"], (where, got)
    # the debugger's selected thread is py-bt's
    found = re.search(r"tid = (\d+)" if debugger == "lldb" else r"LWP (\d+)", got[selected])
    assert found, (where, got[selected])
    chosen = next((t for t in truth["threads"] if t["native_id"] == int(found.group(1))), main)
    assert "#0   " + _frame_text(chosen["frames"][0]) in got["py-bt"], (where, got[selected], got["py-bt"], err[-2000:])
    for t in truth["threads"]:
        if t["name"]:
            assert t["name"] in got["pyspy threads"], (where, t["name"], got["pyspy threads"])
    assert _frame_text(sleeper["frames"][0]) in got["pyspy thread %d" % sleeper["native_id"]], (where, got)
    assert _frame_text(zoo["frames"][0]) in got["pyspy thread locals-zoo"], (where, got)
    zoo_locals = zoo["frames"][0]["locals"]
    for text in (got["pyspy locals"], got["py-locals"]):
        assert "Arguments:" in text and "Locals:" in text, (where, text)
        for name in ("arg_int", "s_ascii", "big_list", "digit_edge"):
            assert "    %s = %s" % (name, zoo_locals[name]["repr"][:60]) in text, (where, name, text[:3000])
    assert got["pyspy print s_ascii"].strip() == "'hello world'", (where, got["pyspy print s_ascii"])
    assert got["py-print small"].strip() == "255", (where, got["py-print small"])
    assert got["pyspy print lst[3][1]"].strip() == "[4]", (where, got["pyspy print lst[3][1]"])
    assert _frame_text(rec["frames"][1], True) in got["pyspy up"], (where, got["pyspy up"])
    assert _frame_text(rec["frames"][3], True) in got["pyspy up 2"], (where, got["pyspy up 2"])
    assert _frame_text(rec["frames"][2], True) in got["pyspy down"], (where, got["pyspy down"])
    assert "> #2   " + _frame_text(rec["frames"][2]) in got["pyspy bt"], (where, got["pyspy bt"][:2000])
    assert got["pyspy bt"].count("\n") >= 500, where
    assert "samples a running process over time; this session reads a process stopped in a debugger" in err, (where, err[-2000:])
    assert _frame_text(rec["frames"][0], True) in got["pyspy frame 0"], (where, got["pyspy frame 0"])
    assert not problems, "target left stopped or traced after %s: %s" % (debugger, problems)


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_kernel_core_dump_json(python, kernel_subject, loaders, debugger):
    """A target killed with SIGABRT for a kernel core (which, unlike gcore, keeps the stack
    memory next to in-mapping guard pages), compared with its live dump taken before."""
    _need(debugger)
    if debugger == "lldb" and python.minor in ("3.6", "3.7"):
        pytest.skip("%s: lldb reading a core of 3.6/3.7 cannot read the C Task type's name (its bytes in "
                    "_asyncio's mapping are 'not readable in the lldb inferior'); gdb reads the same core "
                    "exactly" % python.id)
    core = kernel_subject.kernel_core()
    out, err, parts = run_debugger(debugger, loaders[debugger], ["pyspy dump --json --locals"], core=core,
                                   executable=kernel_subject.executable)
    _check_dump(python, kernel_subject, debugger, "kernel core", out, err, parts)


PROCESS_PROBE = (
    "import json; from repl.debuggers.%(module)s import %(cls)s; p = %(cls)s(%(arg)s); "
    "print('PROBE ' + json.dumps({'files': [[f.path, f.start, f.load_bias, f.build_id, f.local_path] "
    "for f in p.mapped_files()], 'threads': [t.tid for t in p.threads()], "
    "'regs': {t.tid: [p.registers(t.tid).pc, p.registers(t.tid).sp] for t in p.threads()}, "
    "'syscall': p.in_syscall([t.tid for t in p.threads()]), 'exe': p.executable(), 'pid': p.pid, "
    "'maps': len(p.maps()), 'native': {tid: [f.address for f in frames] for tid, frames in "
    "__import__('snapshot.native', fromlist=['x']).native_stacks(p, [t.tid for t in p.threads()]).items()}}))")


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_process_protocol(once_python, loaders, debugger, tmp_path):
    """GdbProcess / LldbProcess against /proc: threads, mapped files (load bias from the first
    mapping, build-id from the file), registers inside the thread's stack and code, idle threads,
    and native stacks (snapshot.native on the debugger's Process) equal to those read with ptrace."""
    _need(debugger)
    from snapshot.binary import _quick_build_id
    from snapshot.native import native_stacks
    from snapshot.process.live import LiveProcess
    s = Subject(once_python, str(tmp_path))
    try:
        live = LiveProcess(s.pid)
        with live.paused() as stopped:
            live_native = {str(tid): [f.address for f in frames]
                           for tid, frames in native_stacks(live, stopped).items()}
        live.close()
        if debugger == "gdb":
            line = "python " + PROCESS_PROBE % {"module": "gdbprocess", "cls": "GdbProcess", "arg": ""}
        else:
            line = "script " + PROCESS_PROBE % {"module": "lldbprocess", "cls": "LldbProcess",
                                                "arg": "lldb.debugger.GetSelectedTarget()"}
        out, err, parts = run_debugger(debugger, loaders[debugger], [line], pid=s.pid)
        probe = [l for l in parts[0].splitlines() if l.startswith("PROBE ")]
        assert probe, (out[-3000:], err[-3000:])
        data = json.loads(probe[0][len("PROBE "):])
        with open("/proc/%d/maps" % s.pid) as fh:
            maps = [l.split() for l in fh.read().splitlines()]
        tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % s.pid))
        assert sorted(data["threads"]) == tids and data["pid"] == s.pid
        assert os.path.realpath(data["exe"]) == os.path.realpath(s.truth["executable"])
        assert data["maps"] >= len(data["files"]) > 0
        first = {}
        for m in maps:
            if len(m) >= 6 and m[5].startswith("/") and m[5] not in first:
                first[m[5]] = m
        for path, start, bias, build_id, local in data["files"]:
            real = {os.path.realpath(p): m for p, m in first.items()}
            m = first.get(path) or real.get(os.path.realpath(path))
            assert m is not None, (path, sorted(first))
            assert start == int(m[0].split("-")[0], 16), (path, hex(start), m)
            assert build_id == _quick_build_id(local), (path, build_id)
            from repl.debuggers.base import elf_layout
            e_type, vaddr = elf_layout(local)
            expected = 0 if e_type == 2 else int(m[0].split("-")[0], 16) - int(m[2], 16) - vaddr
            assert bias == expected, (path, hex(bias), hex(expected))
        def mapping_of(address):
            for m in maps:
                lo, hi = (int(x, 16) for x in m[0].split("-"))
                if lo <= address < hi:
                    return m
            return None
        for tid, (pc, sp) in data["regs"].items():
            assert "x" in mapping_of(pc)[1], (tid, hex(pc))
            assert "w" in mapping_of(sp)[1], (tid, hex(sp))
        assert data["native"] == live_native, "native stacks differ from the ptrace ones"
        # every thread of this target is blocked in a system call
        assert data["syscall"] and all(data["syscall"].values()), data["syscall"]
        assert not settle(s.pid, debugger)
    finally:
        s.stop()


# --------------------------------------------------------------------------
# once, not per interpreter
# --------------------------------------------------------------------------
def test_loader_paths(loaders):
    """gdb-path / lldb-path: exit 0, the last line an existing loader script (packaged with the code)."""
    for debugger, path in loaders.items():
        assert path.endswith("pyspy_%s.py" % debugger)
        assert os.path.dirname(path).endswith(os.path.join("repl", "debuggers", "scripts"))
    r = run_tool(["gdb-path", "--help"])
    assert r.returncode == 0 and b"source" in r.stdout


def test_gdb_help_and_completion(loaders):
    _need("gdb")
    r = subprocess.run(["gdb", "-nx", "-batch", "-ex", "source " + loaders["gdb"], "-ex", "help pyspy",
                        "-ex", "complete pyspy thr", "-ex", "complete pyspy dump --j",
                        "-ex", "help py-bt"], capture_output=True, timeout=120, env=_debugger_env())
    out = r.stdout.decode()
    assert "pyspy dump" in out and "pyspy locals" in out, out
    assert "pyspy threads" in out and "pyspy thread" in out, out
    assert "\npyspy dump --json\n" in out, out
    assert "libpython" in out, out
    assert "pyspy record" not in out, out


def test_no_inferior_is_one_line_error(loaders):
    """`pyspy dump` in a debugger with nothing loaded: a one-line error with a hint, no traceback."""
    for debugger in ("gdb", "lldb"):
        if debugger == "lldb" and _lldb_problem():
            continue
        _need(debugger)
        if debugger == "gdb":
            cmd = ["gdb", "-nx", "-batch", "-ex", "source " + loaders["gdb"], "-ex", "pyspy dump"]
        else:
            cmd = [LLDB, "--no-lldbinit", "-b", "-o", "command script import " + loaders["lldb"], "-o", "pyspy dump"]
        r = subprocess.run(cmd, capture_output=True, timeout=120, env=_debugger_env())
        text = r.stdout.decode() + r.stderr.decode()
        assert "Traceback" not in text, (debugger, text)
        assert "no process or core loaded" in text and "hint:" in text, (debugger, text)


def test_loader_without_record_warns(loaders, tmp_path):
    """A loader whose dependency record is missing says what to run, on stderr, in one line."""
    _need("gdb")
    env = _debugger_env()
    env["XDG_CACHE_HOME"] = str(tmp_path)      # no record there (the checkout keeps none of its own)
    r = subprocess.run(["gdb", "-nx", "-batch", "-ex", "source " + loaders["gdb"], "-ex", "help pyspy"],
                       capture_output=True, timeout=120, env=env)
    err = r.stderr.decode()
    assert "pyspy: warning: no record of where pyspy-repl's dependencies are installed" in err, err
    assert "pyspy-repl gdb-path" in err and "Traceback" not in err, err

