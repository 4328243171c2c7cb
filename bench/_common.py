"""Shared helpers for the benches: tools, targets, timing, tables."""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
WORKLOADS = os.path.join(BENCH, "workloads")
DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3.12"


def tools() -> Dict[str, str]:
    """Run setup.sh (idempotent) and return its KEY=VALUE lines."""
    out = subprocess.run(["bash", os.path.join(BENCH, "setup.sh")], check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def pin(cpu: Optional[int]) -> List[str]:
    """A taskset prefix pinning a command to one CPU (empty when not possible)."""
    if cpu is None or not shutil.which("taskset") or (os.cpu_count() or 1) <= cpu:
        return []
    return ["taskset", "-c", str(cpu)]


def bench_root() -> str:
    return os.environ.get("PYSPY_REPL_BENCH") or os.path.join(os.path.expanduser("~"), ".cache", "pyspy-repl", "bench")


#: How an installed ``pyspy-repl`` command started before the tree shipped its own script:
#: pip's generated wrapper (``re``, ``sys``, then the entry point).
PIP_WRAPPER_SCRIPT = ("import re, sys\n"
                      "try:\n    from repl.entry import console_main\n"
                      "except ImportError:\n    from repl.cli import console_main\n"
                      "sys.argv[0] = 'pyspy-repl'\nconsole_main()")


def pyspy_repl_script() -> str:
    """What the installed ``pyspy-repl`` command runs, so a bench pays what a user pays (not
    ``python -m``'s runpy and importlib.util, ~3 ms): the measured tree's ``bin/pyspy-repl``
    (installed as written), or pip's wrapper for a tree without one."""
    path = os.path.join(REPO, "bin", "pyspy-repl")
    if not os.path.exists(path):
        return PIP_WRAPPER_SCRIPT
    with open(path) as fh:
        return "import sys\nsys.argv[0] = 'pyspy-repl'\n" + fh.read()


def pyspy_repl_argv(tool_python: str, *args: str) -> List[str]:
    """The command line of ``pyspy-repl ARGS...`` run by ``tool_python`` (the work tree on PYTHONPATH)."""
    return [tool_python, "-c", pyspy_repl_script()] + list(args)


def pyspy_repl_env(cache_dir: Optional[str] = None) -> Dict[str, str]:
    """Environment for running pyspy-repl from the work tree like an installed package:
    byte-code cached (under the bench root, not in the tree) even where the
    environment sets PYTHONDONTWRITEBYTECODE; XDG_CACHE_HOME as asked."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(bench_root(), "pycache")
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if cache_dir is not None:
        env["XDG_CACHE_HOME"] = cache_dir
    return env


class Target:
    """A workload process, started pinned, killed on exit."""

    def __init__(self, python: str, script: str, args: Sequence[str] = (), cpu: Optional[int] = None):
        self.dir = tempfile.mkdtemp(prefix="pyspy-bench-")
        self.progress = os.path.join(self.dir, "progress")
        self.ready = os.path.join(self.dir, "ready")
        argv = pin(cpu) + [python, os.path.join(WORKLOADS, script)] + list(args)
        if script == "dump20.py":
            argv += ["--ready", self.ready]
            wait_for = self.ready
        else:
            argv += ["--progress", self.progress]
            wait_for = self.progress
        self.proc = subprocess.Popen(argv, cwd=WORKLOADS, stdout=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while not (os.path.exists(wait_for) and os.path.getsize(wait_for) > 0):
            if self.proc.poll() is not None:
                raise RuntimeError("workload %s exited with %s" % (script, self.proc.returncode))
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("workload %s never became ready" % script)
            time.sleep(0.05)
        time.sleep(0.3)  # past start-up transients

    def state(self) -> str:
        """Scheduler states of every thread ('T'/'t' means left stopped)."""
        states = []
        try:
            for tid in os.listdir("/proc/%d/task" % self.pid):
                with open("/proc/%d/task/%s/stat" % (self.pid, tid)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            return "gone"
        return "".join(sorted(set(states)))

    def rate(self, t0: float, t1: float) -> Optional[float]:
        """Workload iterations per second between monotonic times t0 and t1."""
        points = []
        with open(self.progress) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    points.append((float(parts[0]), int(parts[1])))
        inside = [p for p in points if t0 <= p[0] <= t1]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_rusage(proc: subprocess.Popen):
    """Reap ``proc`` with wait4 and return its rusage (user+sys includes its reaped children)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    return usage


def exited(pid: int) -> bool:
    """True once ``pid`` is a zombie (not reaped yet, so wait4 can still read its rusage) or gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def stop(proc: subprocess.Popen, sig=signal.SIGINT, grace: float = 30.0) -> None:
    """Ask a profiler to stop (as Ctrl-C would), escalating to SIGKILL if it ignores us."""
    if exited(proc.pid):
        return
    proc.send_signal(sig)
    deadline = time.monotonic() + grace
    while not exited(proc.pid):
        if time.monotonic() > deadline:
            proc.kill()
            return
        time.sleep(0.01)


def recorded_samples(stderr: str) -> Optional[int]:
    """The sample count a ``record`` run (or the floor sampler) printed last: its summary.
    (A "behind in sampling: N of 1000 samples a second" warning names other counts.)"""
    import re
    counts = re.findall(r"(\d+) samples(?! a second)", stderr)
    return int(counts[-1]) if counts else None


def median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return ("%." + str(digits) + "f%s") % (value, unit)
    return "%s%s" % (value, unit)


def ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or b == 0 or a != a or b != b:
        return "n/a"
    return ("%." + str(digits) + "fx") % (a / b)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (readable in a terminal too)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def machine_line(python: str) -> str:
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return "%s, %d cores, load average %.1f at start, target Python %s (%s), tools run by Python %s" % (
        time.strftime("%Y-%m-%d %H:%M"), os.cpu_count() or 0, load, version, python, sys.version.split()[0])
