"""The interpreter matrix of the end-to-end tests.

Expected entries (ids as used by the ``python`` fixture):

* ``2.7-pyenv``, ``3.6-pyenv``, ``3.7-pyenv``, ``3.8-pyenv`` ... ``3.13-pyenv``: pyenv builds,
  ``$(pyenv root)/versions/X.Y.*/bin/pythonX.Y`` (the newest patch release when several are
  installed); 2.7, 3.6 and 3.7 are the "legacy" entries (``Interpreter.legacy``), which only
  test modules listed in ``LEGACY_READY`` run on (the others skip them, saying so);
* ``3.11-debian``: Debian's stripped, statically linked ``/usr/bin/python3.11``;
* ``3.14-sid``, ``3.15-sid``: Debian sid builds provided by ``tests/tools/get-pythons.sh``.

Every expected entry is always listed; one that is not available carries the
reason, and the tests skip it with that reason instead of dropping it.

Environment:
  PYSPY_REPL_NO_FETCH=1     do not run get-pythons.sh (use what DEST already has)
  PYSPY_REPL_PYTHONS=DIR    DEST of get-pythons.sh (default ~/.cache/pyspy-repl/pythons)
  PYSPY_REPL_MATRIX=ID,...  restrict the matrix (others are skipped, visibly)
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
GET_PYTHONS = os.path.join(HERE, "tools", "get-pythons.sh")
PYENV_MINORS = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
SID_MINORS = ["3.14", "3.15"]
#: Interpreters older than 3.8: supported, but their targets differ (tests/targets/py27/ for 2.7,
#: no asyncio.run in 3.6, no threading.get_native_id before 3.8).
LEGACY_MINORS = ("2.7", "3.6", "3.7")
#: Test modules that run on the legacy interpreters; every other module skips them visibly.
LEGACY_READY = frozenset({"test_binary_symbols.py",
                          "test_dump_e2e.py", "test_repl.py", "test_repl_scripted.py", "test_repl_pause.py",
                          "test_layouts.py", "test_linetable.py", "test_sampler.py", "test_core.py",
                          "test_debuggers.py", "test_native_gdb.py", "test_native_dump.py", "test_native_status.py",
                          "test_native_cache.py", "test_asyncio_tasks.py", "test_record.py", "test_hangwatch.py",
                          "test_savefile.py", "test_idle.py", "test_thread_status.py"})
#: Versions with no layout, for the "unsupported version" error test (none installed here: skipped).
UNSUPPORTED_MINORS = ["3.5", "2.6"]
FETCH_TIMEOUT = 900
#: the checks that run on one interpreter only (console scripts, 200 dumps, pause safety)
CONSOLE_SCRIPT_INTERPRETER = os.environ.get("PYSPY_REPL_ONCE_ON", "3.12-pyenv")


@dataclass
class Interpreter:
    id: str                       # "3.12-pyenv"
    minor: str                    # "3.12"
    flavour: str                  # pyenv | debian | sid
    path: Optional[str] = None    # None when missing
    version: Optional[str] = None  # full version reported by the interpreter, e.g. "3.12.1"
    missing: Optional[str] = None  # why it is not available

    @property
    def legacy(self) -> bool:
        """2.7, 3.6 or 3.7 (see ``LEGACY_MINORS``)."""
        return self.minor in LEGACY_MINORS

    @property
    def version_tuple(self) -> Tuple[int, int]:
        return tuple(int(x) for x in self.minor.split("."))

    @property
    def available(self) -> bool:
        return self.path is not None and self.missing is None

    def describe(self) -> str:
        if self.available:
            return "%-12s %-8s %s" % (self.id, self.version, self.path)
        return "%-12s MISSING  %s" % (self.id, self.missing)


def pyenv_root() -> str:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=20).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser("~/.pyenv")


def _version_key(path: str):
    m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/", path)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def find_pyenv(minor: str) -> Optional[str]:
    """Newest pyenv CPython build of ``minor`` (release builds only: no -dev, t, d suffixes)."""
    root = pyenv_root()
    candidates = [p for p in glob.glob(os.path.join(root, "versions", minor + ".*", "bin", "python" + minor))
                  if re.search(r"/versions/%s\.\d+/bin/" % re.escape(minor), p) and os.access(p, os.X_OK)]
    return max(candidates, key=_version_key) if candidates else None


def probe(path: str) -> Tuple[Optional[str], Optional[str]]:
    """(full version, None) if ``path`` runs, else (None, reason)."""
    try:
        r = subprocess.run([path, "-c", "import sys, threading; print('%d.%d.%d' % sys.version_info[:3])"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "%s does not run: %s" % (path, exc)
    if r.returncode != 0:
        return None, "%s does not run: %s" % (path, (r.stderr.strip().splitlines() or ["?"])[-1])
    return r.stdout.strip(), None


def sid_dest() -> str:
    return os.environ.get("PYSPY_REPL_PYTHONS") or os.path.expanduser("~/.cache/pyspy-repl/pythons")


def sid_debug_dir() -> Optional[str]:
    """DEST/debug: the -dbg packages' build-id trees get-pythons.sh unpacks (None when absent)."""
    path = os.path.join(sid_dest(), "debug")
    return path if os.path.isdir(os.path.join(path, ".build-id")) else None


def _use_sid_debug_dir() -> None:
    """Let the tool (in-process and ``run_tool``) name the stripped sid interpreters' functions."""
    path = sid_debug_dir()
    if path is None:
        return
    dirs = [d for d in os.environ.get("PYSPY_REPL_DEBUG_DIRS", "").split(os.pathsep) if d]
    if path not in dirs:
        os.environ["PYSPY_REPL_DEBUG_DIRS"] = os.pathsep.join(dirs + [path])


_use_sid_debug_dir()


@dataclass
class FetchResult:
    paths: Dict[str, str] = field(default_factory=dict)   # minor -> path
    problem: Optional[str] = None
    seconds: float = 0.0


@contextlib.contextmanager
def machine_lock(name: str):
    """One holder at a time across processes (pytest-xdist workers, two checkouts' suites) for
    set-up steps that write shared places: get-pythons.sh's DEST, apt-get's dpkg database."""
    import fcntl
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "pyspy-repl-tests-%s.lock" % name)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_sid() -> FetchResult:
    """Run the project's get-pythons step (or, with PYSPY_REPL_NO_FETCH=1, look in DEST)."""
    dest = sid_dest()
    res = FetchResult()
    if os.environ.get("PYSPY_REPL_NO_FETCH") == "1":
        for minor in SID_MINORS:
            p = os.path.join(dest, "bin", "python" + minor)
            if os.access(p, os.X_OK):
                res.paths[minor] = p
        if not res.paths:
            res.problem = "PYSPY_REPL_NO_FETCH=1 and nothing in %s/bin" % dest
        return res
    start = time.monotonic()
    try:
        with machine_lock("get-pythons"):
            r = subprocess.run(["bash", GET_PYTHONS, dest], capture_output=True, text=True, timeout=FETCH_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        res.problem = "tests/tools/get-pythons.sh could not run: %s" % exc
        return res
    res.seconds = time.monotonic() - start
    _use_sid_debug_dir()   # the debug tree may have just been unpacked (a clean machine's first run)
    for line in r.stdout.splitlines():
        m = re.search(r"python(3\.\d+)$", line.strip())
        if m:
            res.paths[m.group(1)] = line.strip()
    if r.returncode != 0:
        tail = " | ".join(r.stderr.strip().splitlines()[-3:])
        res.problem = "tests/tools/get-pythons.sh %s failed (exit %d): %s" % (dest, r.returncode, tail)
    return res


def discover(fetch: Optional[FetchResult] = None) -> List[Interpreter]:
    """Every expected matrix entry, available or with the reason it is missing."""
    wanted = [x.strip() for x in os.environ.get("PYSPY_REPL_MATRIX", "").split(",") if x.strip()]
    out: List[Interpreter] = []
    root = pyenv_root()
    for minor in PYENV_MINORS:
        it = Interpreter(minor + "-pyenv", minor, "pyenv", find_pyenv(minor))
        if it.path is None:
            it.missing = "no pyenv build of %s under %s/versions (pyenv install %s)" % (minor, root, minor)
        out.append(it)
    debian = Interpreter("3.11-debian", "3.11", "debian", "/usr/bin/python3.11" if os.access("/usr/bin/python3.11", os.X_OK) else None)
    if debian.path is None:
        debian.missing = "/usr/bin/python3.11 not found (Debian 12's python3.11 package)"
    out.append(debian)
    for minor in SID_MINORS:
        it = Interpreter(minor + "-sid", minor, "sid")
        if fetch is None:
            it.missing = "sid interpreters not fetched"
        elif minor in fetch.paths:
            it.path = fetch.paths[minor]
        else:
            it.missing = "python%s not provided by tests/tools/get-pythons.sh%s" % (
                minor, (": " + fetch.problem) if fetch.problem else "")
        out.append(it)
    for it in out:
        if wanted and it.id not in wanted:
            it.missing = "not selected by PYSPY_REPL_MATRIX=%s" % ",".join(wanted)
            continue
        if it.path is not None and it.missing is None:
            it.version, problem = probe(it.path)
            if problem:
                it.missing = problem
            elif not it.version.startswith(it.minor + "."):
                it.missing = "%s reports %s, expected %s.x" % (it.path, it.version, it.minor)
    return out


def find_unsupported() -> List[Interpreter]:
    """pyenv 3.7 / 3.6 builds, for the "unsupported version" error test."""
    out = []
    for minor in UNSUPPORTED_MINORS:
        p = find_pyenv(minor)
        it = Interpreter(minor + "-pyenv", minor, "pyenv", p)
        if p is None:
            it.missing = "no pyenv build of %s" % minor
        else:
            it.version, it.missing = probe(p)
        out.append(it)
    return out


if __name__ == "__main__":   # python tests/pythons.py: print the matrix
    fr = fetch_sid()
    for interp in discover(fr):
        print(interp.describe())


# --------------------------------------------------------------------------
# Running targets and the tool
# --------------------------------------------------------------------------
import signal  # noqa: E402
import sys  # noqa: E402

REPO = os.path.dirname(HERE)
TARGETS = os.path.join(HERE, "targets")


def share_tolerance(share_percent: float, samples: int, sigmas: float = 5.0, floor: float = 0.5) -> float:
    """Points a measured share may differ from the truth by: ``sigmas`` binomial standard deviations
    of a share estimated from ``samples`` samples, plus ``floor`` points (phase-boundary ticks).
    Holds with overwhelming probability whatever the load (a loaded machine gives fewer samples,
    hence a wider band), unlike a fixed +-2 points that is ~1.3 sigma at 1,000 samples."""
    p = min(max(share_percent / 100.0, 0.0), 1.0)
    return 100.0 * sigmas * (p * (1 - p) / max(samples, 1)) ** 0.5 + floor


def wait_for_threads(pid: int, count: int, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` runs at least ``count`` threads (a target's set-up is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(os.listdir("/proc/%d/task" % pid)) >= count:
                return
        except OSError:
            raise AssertionError("process %d is gone" % pid)
        time.sleep(0.02)
    raise AssertionError("process %d did not start %d threads within %ss" % (pid, count, timeout))


def target_script(name: str, python: Optional["Interpreter"] = None) -> str:
    """tests/targets/NAME, or for a 2.7 interpreter its 2.7-syntax variant tests/targets/py27/NAME
    when there is one."""
    if python is not None and python.minor.startswith("2."):
        variant = os.path.join(TARGETS, "py27", name)
        if os.path.exists(variant):
            return variant
    return os.path.join(TARGETS, name)


def end_stdin_target(proc, target=None, line: str = "quit\n") -> None:
    """End a target driven through its stdin (``line`` first, then kill), and close the
    ``snapshot.Target`` attached to it, if any."""
    if proc.poll() is None:
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except OSError:
            pass
    proc.kill()
    proc.wait()
    if target is not None:
        target.close()


def proc_state(pid: int) -> Optional[str]:
    """The one-letter state of /proc/PID/stat (None if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2]


def tracer_pid(pid: int) -> Optional[int]:
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def task_states(pid: int) -> Dict[int, tuple]:
    """{tid: (state, TracerPid)} for every thread of ``pid``."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tids:
        tid = int(t)
        try:
            with open("/proc/%d/task/%d/stat" % (pid, tid)) as fh:
                data = fh.read()
            state = data[data.rindex(")") + 2]
            tracer = None
            with open("/proc/%d/task/%d/status" % (pid, tid)) as fh:
                for line in fh:
                    if line.startswith("TracerPid:"):
                        tracer = int(line.split()[1])
            out[tid] = (state, tracer)
        except (OSError, ValueError):
            continue
    return out


def wait_blocked(pid: int, tids, timeout: float = 30.0) -> None:
    """Until every thread in ``tids`` has slept (state S) on 5 consecutive polls."""
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 5:
        states = task_states(pid)
        if all(states.get(t, ("?",))[0] == "S" for t in tids):
            calm += 1
        else:
            calm = 0
        if time.monotonic() > deadline:
            raise AssertionError("threads did not block: %s" % states)
        time.sleep(0.05)


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for ``proc`` (a TimeoutExpired still raises), killing and reaping it if it runs on."""
    try:
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stopped_or_traced(pid: int) -> List[str]:
    """Problems: threads in a stopped state ('t'/'T') or with a tracer attached."""
    problems = []
    for tid, (state, tracer) in sorted(task_states(pid).items()):
        if state in ("t", "T"):
            problems.append("task %d is stopped (state %s)" % (tid, state))
        if tracer:
            problems.append("task %d is traced by pid %d" % (tid, tracer))
    return problems


class Target:
    """A target process started in its own session; ``stop()`` kills it."""

    def __init__(self, python: str, script: str, args=(), workdir: str = "/tmp", env=None):
        self.python = python
        self.script = script
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.log_path = os.path.join(workdir, "target.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([python, script] + list(args), stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=workdir, start_new_session=True,
                                     env=env if env is not None else dict(os.environ))
        self.pid = self.proc.pid

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_file(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if not self.alive():
                raise AssertionError("target %s exited with %s before writing %s:\n%s"
                                     % (self.script, self.proc.returncode, path, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("target %s did not write %s within %ss:\n%s"
                                     % (self.script, path, timeout, self.log()))
            time.sleep(0.02)

    def wait_truth(self, path: str, timeout: float = 60.0) -> dict:
        """Wait for TRUTH, then until the main thread sleeps on its final blocking call."""
        self.wait_for_file(path, timeout)
        with open(path, encoding="utf-8") as fh:
            truth = json.load(fh)
        deadline = time.monotonic() + 5
        sleeping = 0
        while sleeping < 3 and time.monotonic() < deadline:
            sleeping = sleeping + 1 if proc_state(self.pid) == "S" else 0
            time.sleep(0.02)
        return truth

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()


_PYCACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "pyspy-repl-tests-pycache-%d" % os.getuid())


def tool_env() -> dict:
    """The environment the tool runs in: this checkout first on the path; bytecode is
    cached outside the repository (PYTHONPYCACHEPREFIX) so 200 runs don't recompile it."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def run_tool(args, timeout: float = 120.0, prefix=None, **kw) -> subprocess.CompletedProcess:
    """``python -m repl.cli ARGS`` (or ``prefix + ARGS``) from the repository checkout."""
    cmd = (list(prefix) if prefix else [sys.executable, "-m", "repl.cli"]) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=REPO,
                          env=kw.pop("env", None) or tool_env(), **kw)


def modules_loaded_after(code: str, names: Sequence[str]) -> List[str]:
    """Which of ``names`` are in ``sys.modules`` after running ``code`` in a fresh interpreter
    with this checkout on the path (what a start-up test asserts stays out)."""
    probe = code + "\nimport sys\nprint(' '.join(m for m in %r if m in sys.modules))" % (tuple(names),)
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, PYTHONPATH=REPO))
    return out.stdout.decode().split()


@contextlib.contextmanager
def repl_target(python, workdir: str, *extra_args: str):
    """tests/targets/repl_target.py running under ``python``, with its truth loaded as ``.truth``."""
    truth_path = os.path.join(workdir, "truth.json")
    t = Target(python.path, target_script("repl_target.py"), [truth_path, *extra_args], workdir=workdir)
    try:
        t.wait_for_file(truth_path, 60)
        with open(truth_path, encoding="utf-8") as fh:
            t.truth = json.load(fh)
        t.truth_path = truth_path
        yield t
    finally:
        t.stop()
