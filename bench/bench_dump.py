#!/usr/bin/env python3
"""Time `dump` of pyspy-repl and of py-spy on the same 20-thread target, in one run.

    python3 bench/bench_dump.py [--runs N] [--quick] [--python PATH]

Target: bench/workloads/dump20.py (20 threads of varied shapes, all blocked)
run by --python (default pyenv 3.12.1).  Measured, for plain `dump` and for
`dump --locals`, both tools in their default blocking mode:

* CLI wall time (median of N runs, interleaved, like hyperfine):
  - cold: every run gets a fresh empty XDG_CACHE_HOME, so pyspy-repl redoes
    its per-binary analysis (py-spy keeps no cache: its cold = its warm);
  - warm: one XDG_CACHE_HOME kept across runs, primed by one run first.
* in process (the REPL case): `attach()` cold and warm, then
  `Target.snapshot()` after warm-up (median of many calls).

Ratios are pyspy-repl / py-spy (below 1.00x: pyspy-repl faster).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def run_cli(argv, env) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), proc.returncode, proc.stderr.decode()[-500:]))
    return elapsed


def thread_count(argv, env) -> int:
    out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, universal_newlines=True).stdout
    return sum(1 for line in out.splitlines() if line.startswith("Thread "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=C.DEFAULT_PYTHON, help="interpreter running the target")
    parser.add_argument("--tool-python", default=None,
                        help="interpreter running pyspy-repl (default: setup.sh's venv of its dependencies)")
    parser.add_argument("--runs", type=int, default=None, help="CLI runs per cell (default 15, --quick 5)")
    parser.add_argument("--calls", type=int, default=None, help="in-process snapshot() calls (default 200)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 15)
    calls = args.calls or (50 if args.quick else 200)
    tools = C.tools()
    args.tool_python = args.tool_python or tools.get("TOOL_PYTHON") or sys.executable
    pyspy = tools["PYSPY"]
    print("# dump bench: %s" % C.machine_line(args.python))
    print("# py-spy %s (%s); pyspy-repl from %s; %d CLI runs per cell, %d in-process calls\n"
          % (tools.get("PYSPY_VERSION", "?"), pyspy, C.REPO, runs, calls))

    scratch = tempfile.mkdtemp(prefix="pyspy-dump-bench-")
    warm_cache = os.path.join(scratch, "warm")
    results = {}
    try:
        with C.Target(args.python, "dump20.py") as target:
            pid = str(target.pid)
            variants = [("dump", []), ("dump --locals", ["--locals"])]
            cmds = {
                "pyspy-repl": lambda extra: C.pyspy_repl_argv(args.tool_python) + ["dump", "--pid", pid] + extra,
                "py-spy": lambda extra: [pyspy, "dump", "--pid", pid] + extra,
            }
            # sanity: both see the same 20 threads
            env_warm = C.pyspy_repl_env(warm_cache)
            for tool, cmd in cmds.items():
                n = thread_count(cmd([]), env_warm)
                print("# %s sees %d threads" % (tool, n))
            for label, extra in variants:
                times = {(tool, kind): [] for tool in cmds for kind in ("cold", "warm")}
                for tool, cmd in cmds.items():  # prime the warm cache (and the page cache)
                    run_cli(cmd(extra), env_warm)
                for _ in range(runs):
                    for tool, cmd in cmds.items():
                        cold = tempfile.mkdtemp(dir=scratch)
                        times[(tool, "cold")].append(run_cli(cmd(extra), C.pyspy_repl_env(cold)))
                        shutil.rmtree(cold, ignore_errors=True)
                        times[(tool, "warm")].append(run_cli(cmd(extra), env_warm))
                for key, values in times.items():
                    results[(label,) + key] = (C.median(values), min(values), max(values))
            floor = {}
            for label, argv in (("python -c pass", [args.tool_python, "-c", "pass"]),
                                ("python -S -c pass", [args.tool_python, "-S", "-c", "pass"])):
                floor[label] = C.median([run_cli(argv, env_warm) for _ in range(runs)])
            inproc = in_process(target.pid, scratch, calls)
            if target.state() not in ("S", "R", "RS", "SR"):
                print("# WARNING: target threads in state %r after the bench" % target.state())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for label in ("dump", "dump --locals"):
        for kind in ("cold", "warm"):
            mine = results[(label, "pyspy-repl", kind)]
            theirs = results[(label, "py-spy", kind)]
            rows.append(["CLI %s, %s cache" % (label, kind),
                         "%.1f (%.1f-%.1f)" % tuple(v * 1e3 for v in mine),
                         "%.1f (%.1f-%.1f)" % tuple(v * 1e3 for v in theirs),
                         C.ratio(mine[0], theirs[0])])
    for label, locals_ in (("dump", False), ("dump --locals", True)):
        snap = inproc["snapshot_locals" if locals_ else "snapshot"]
        theirs = results[(label, "py-spy", "warm")][0]
        rows.append(["in-process Target.snapshot(%s), warm" % ("locals=True" if locals_ else ""),
                     "%.2f (%.2f-%.2f)" % tuple(v * 1e3 for v in snap), "%.1f (CLI)" % (theirs * 1e3),
                     C.ratio(snap[0], theirs)])
    rows.append(["in-process attach(), cold cache", "%.1f" % (inproc["attach_cold"] * 1e3), "", ""])
    rows.append(["in-process attach(), warm cache", "%.1f" % (inproc["attach_warm"] * 1e3), "", ""])
    rows.append(["in-process import snapshot.target", "%.1f" % (inproc["import"] * 1e3), "", ""])
    for label, value in floor.items():
        rows.append(["floor: %s (tool Python start-up)" % label, "%.1f" % (value * 1e3), "", ""])
    print()
    print(C.table(["20-thread target, ms: median (min-max)", "pyspy-repl", "py-spy", "ratio"], rows))
    print("\nratio = pyspy-repl / py-spy median wall time (below 1.00x: pyspy-repl is faster).")
    return 0


def in_process(pid: int, scratch: str, calls: int) -> dict:
    """The REPL case: attach once, then snapshots served from warm caches."""
    os.environ["XDG_CACHE_HOME"] = cold = tempfile.mkdtemp(dir=scratch)
    sys.path.insert(0, C.REPO)
    t = time.perf_counter()
    import snapshot.target  # noqa: F401
    from snapshot import attach
    imported = time.perf_counter() - t
    t = time.perf_counter()
    target = attach(pid)
    attach_cold = time.perf_counter() - t
    target.close()
    t = time.perf_counter()
    target = attach(pid)
    attach_warm = time.perf_counter() - t
    out = {"import": imported, "attach_cold": attach_cold, "attach_warm": attach_warm}
    for key, locals_ in (("snapshot", False), ("snapshot_locals", True)):
        for _ in range(5):
            target.snapshot(locals=locals_)
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            snap = target.snapshot(locals=locals_)
            times.append(time.perf_counter() - t)
        assert len(snap.threads) == 20, len(snap.threads)
        out[key] = (C.median(times), min(times), max(times))
    target.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
