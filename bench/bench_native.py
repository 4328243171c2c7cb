#!/usr/bin/env python3
"""Time native mode (`--native`) of pyspy-repl and of py-spy on the same target, in one run.

    python3 bench/bench_native.py [--runs N] [--quick] [--python PATH] [--seconds S]

Target: bench/workloads/dump20.py (20 threads of varied shapes, all blocked,
so both tools unwind the same stacks) run by --python (default pyenv 3.12.1).
Measured, both tools in their default blocking mode:

* `dump --native` CLI wall and CPU time (user+sys, wait4), median of N
  interleaved runs: cold (a fresh empty XDG_CACHE_HOME per run: pyspy-repl
  redoes discovery and parses symbol tables and CFI again; py-spy keeps no
  cache, so its cold = its warm), native-cold (only the native cache
  emptied: discovery warm, symbols and unwind rows parsed again: the first
  `--native` attach to an interpreter already seen) and warm;
* `record --native --rate 100 --idle` for S seconds: profiler CPU (user+sys,
  wait4 rusage) per 1,000 samples, and the rate achieved (samples per second
  of the whole process: one sample = one pass over every thread);
* in process (the REPL case): the cold first attach with native symbols
  (`attach()` + the first `snapshot(native=True)` with an empty cache: goal
  under 1 s), and warm `snapshot(native=True)` / `sample(native=True)`.

Ratios are pyspy-repl / py-spy (below 1.00x: pyspy-repl is cheaper or faster).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def run_cli(argv, env):
    """(wall seconds, CPU seconds: user+sys from wait4) of one CLI run."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    usage = C.wait_rusage(proc)
    wall = time.perf_counter() - started
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), proc.returncode, err.decode()[-500:]))
    return wall, usage.ru_utime + usage.ru_stime


def native_cold_cache(warm: str, scratch: str) -> str:
    """A copy of the warm cache without its native part (symbols, unwind rows)."""
    cold = tempfile.mkdtemp(dir=scratch)
    shutil.rmtree(cold)
    shutil.copytree(warm, cold, ignore=lambda d, names: [n for n in names if n == "native"])
    return cold


def record(argv, env, seconds: float):
    """Run a recorder for ``seconds`` (it stops itself), return (cpu seconds, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + seconds + 60
    while not C.exited(proc.pid):
        if time.monotonic() > deadline:
            C.stop(proc)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    usage = C.wait_rusage(proc)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(argv), proc.returncode, err.decode()[-800:]))
    return usage.ru_utime + usage.ru_stime, wall, (out + err).decode("utf-8", "replace")


def raw_passes(path: str, threads: int) -> float:
    """Samples (passes over all threads) in a raw/collapsed file written with --idle."""
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if count.isdigit():
                total += int(count)
    return total / threads if threads else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=C.DEFAULT_PYTHON, help="interpreter running the target")
    parser.add_argument("--tool-python", default=None,
                        help="interpreter running pyspy-repl (default: setup.sh's venv of its dependencies)")
    parser.add_argument("--runs", type=int, default=None, help="CLI dump runs per cell (default 9, --quick 3)")
    parser.add_argument("--seconds", type=float, default=None, help="record duration (default 10, --quick 4)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 9)
    seconds = float(int(args.seconds or (4 if args.quick else 10)))   # py-spy takes whole seconds
    tools = C.tools()
    args.tool_python = args.tool_python or tools.get("TOOL_PYTHON") or sys.executable
    pyspy = tools["PYSPY"]
    print("# native bench: %s" % C.machine_line(args.python))
    print("# py-spy %s (%s); pyspy-repl from %s; %d dump runs per cell, record %gs at 100 Hz\n"
          % (tools.get("PYSPY_VERSION", "?"), pyspy, C.REPO, runs, seconds))
    scratch = tempfile.mkdtemp(prefix="pyspy-native-bench-")
    warm_cache = os.path.join(scratch, "warm")
    env_warm = C.pyspy_repl_env(warm_cache)
    rows = []
    try:
        with C.Target(args.python, "dump20.py") as target:
            pid = str(target.pid)
            dump = {"pyspy-repl": C.pyspy_repl_argv(args.tool_python) + ["dump", "--pid", pid, "--native"],
                    "py-spy": [pyspy, "dump", "--pid", pid, "--native"]}
            for tool, argv in dump.items():
                text = subprocess.run(argv, env=env_warm, stdout=subprocess.PIPE, universal_newlines=True).stdout
                print("# %s dump --native: %d threads, %d lines" % (
                    tool, sum(1 for line in text.splitlines() if line.startswith("Thread ")), len(text.splitlines())))
            kinds = ("cold", "native-cold", "warm")
            times = {(tool, kind): [] for tool in dump for kind in kinds}
            for _ in range(runs):
                for tool, argv in dump.items():
                    cold = tempfile.mkdtemp(dir=scratch)
                    times[(tool, "cold")].append(run_cli(argv, C.pyspy_repl_env(cold)))
                    shutil.rmtree(cold, ignore_errors=True)
                    if tool == "pyspy-repl":
                        cold = native_cold_cache(warm_cache, scratch)
                        times[(tool, "native-cold")].append(run_cli(argv, C.pyspy_repl_env(cold)))
                        shutil.rmtree(cold, ignore_errors=True)
                    times[(tool, "warm")].append(run_cli(argv, env_warm))
            for kind in kinds:
                for what, index in (("wall", 0), ("CPU", 1)):
                    mine = [t[index] for t in times[("pyspy-repl", kind)]]
                    theirs = [t[index] for t in times[("py-spy", "cold" if kind == "native-cold" else kind)]]
                    label = {"cold": "cold cache", "native-cold": "native cache emptied",
                             "warm": "warm cache"}[kind]
                    rows.append(["CLI dump --native, %s, %s ms" % (label, what),
                                 "%.1f (%.1f-%.1f)" % (C.median(mine) * 1e3, min(mine) * 1e3, max(mine) * 1e3),
                                 "%.1f (%.1f-%.1f)" % (C.median(theirs) * 1e3, min(theirs) * 1e3,
                                                       max(theirs) * 1e3),
                                 C.ratio(C.median(mine), C.median(theirs))])
            threads = 20
            per = {}
            for tool in ("pyspy-repl", "py-spy"):
                out = os.path.join(scratch, "%s.txt" % tool)
                if tool == "pyspy-repl":
                    argv = C.pyspy_repl_argv(args.tool_python) + ["record", "--pid", pid, "--native", "--idle",
                            "-r", "100", "-d", str(int(seconds)), "-f", "raw", "-o", out]
                else:
                    argv = [pyspy, "record", "--pid", pid, "--native", "--idle", "-r", "100", "-d", str(int(seconds)),
                            "-f", "raw", "-o", out]
                cpu, wall, text = record(argv, env_warm, seconds)
                passes = raw_passes(out, threads)
                c_frames = 0
                with open(out) as f:
                    c_frames = sum(1 for line in f if re.search(r"\(libc[.-]", line))
                per[tool] = (cpu, passes, c_frames)
                print("# %s record --native: %.0f samples, %.2f s CPU, %.2f s wall, %d stacks with libc frames"
                      % (tool, passes, cpu, wall, c_frames))
            mine, theirs = per["pyspy-repl"], per["py-spy"]
            # CPU seconds per sample * 1e6 = CPU ms per 1,000 samples
            cpu_mine = mine[0] / mine[1] * 1e6 if mine[1] else float("nan")
            cpu_theirs = theirs[0] / theirs[1] * 1e6 if theirs[1] else float("nan")
            rows.append(["record --native -r 100: CPU ms per 1k samples", "%.0f" % cpu_mine,
                         "%.0f" % cpu_theirs, C.ratio(cpu_mine, cpu_theirs)])
            rows.append(["record --native -r 100: samples per second", "%.1f" % (mine[1] / seconds),
                         "%.1f" % (theirs[1] / seconds), C.ratio(mine[1], theirs[1])])
            inproc = in_process(target.pid, scratch)
            warm_cli = C.median([t[0] for t in times[("py-spy", "warm")]])
            rows.append(["in-process cold first attach + snapshot(native=True), ms",
                         "%.1f" % (inproc["cold_first"] * 1e3), "", ""])
            rows.append(["  of which attach() (Python discovery), ms", "%.1f" % (inproc["attach"] * 1e3), "", ""])
            rows.append(["in-process first snapshot(native=True), native cache emptied, ms wall / CPU",
                         "%.1f / %.1f" % (inproc["native_cold"] * 1e3, inproc["native_cold_cpu"] * 1e3), "", ""])
            rows.append(["in-process warm snapshot(native=True), ms", "%.2f" % (inproc["snapshot"] * 1e3),
                         "%.1f (CLI)" % (warm_cli * 1e3), C.ratio(inproc["snapshot"], warm_cli)])
            rows.append(["in-process warm sample(native=True), ms", "%.2f" % (inproc["sample"] * 1e3),
                         "%.1f (CLI)" % (warm_cli * 1e3), C.ratio(inproc["sample"], warm_cli)])
            rows.append(["in-process warm sample() (no native), ms", "%.2f" % (inproc["plain"] * 1e3), "", ""])
            if target.state() not in ("S", "R", "RS", "SR"):
                print("# WARNING: target threads in state %r after the bench" % target.state())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(C.table(["20-thread target, native mode", "pyspy-repl", "py-spy", "ratio"], rows))
    print("\nratio = pyspy-repl / py-spy (below 1.00x: pyspy-repl is cheaper or faster).")
    return 0


def in_process(pid: int, scratch: str, calls: int = 50) -> dict:
    """The REPL case: cold first attach with native symbols, then warm native snapshots."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(dir=scratch)
    sys.path.insert(0, C.REPO)
    t = time.perf_counter()
    from snapshot import attach
    target = attach(pid)
    attached = time.perf_counter() - t
    target.snapshot(native=True)
    cold_first = time.perf_counter() - t
    out = {"cold_first": cold_first, "attach": attached}
    target.close()
    # discovery warm, native cache emptied: the first --native attach to an interpreter seen before
    from snapshot.native import cache, modules
    shutil.rmtree(cache.directory(), ignore_errors=True)
    modules._ROWS.clear()
    modules._SYMBOLS.clear()
    target = attach(pid)
    t, c = time.perf_counter(), time.process_time()
    target.snapshot(native=True)
    out["native_cold"], out["native_cold_cpu"] = time.perf_counter() - t, time.process_time() - c
    for key, call in (("snapshot", lambda: target.snapshot(native=True)),
                      ("sample", lambda: target.sample(native=True)), ("plain", lambda: target.sample())):
        for _ in range(3):
            call()
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        out[key] = C.median(times)
    target.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
