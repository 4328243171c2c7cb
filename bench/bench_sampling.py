#!/usr/bin/env python3
"""Sampling cost of pyspy-repl, py-spy and austin on the same workloads, in one run.

    python3 bench/bench_sampling.py [--quick] [--python PATH] [--workloads a,b,c] [--json FILE]

Workloads (bench/workloads/, all run by --python, default pyenv 3.12.1):
  a  deep50.py    one thread, 50 frames deep, CPU work at the leaf
  b  threads8.py  8 threads, 20 frames deep (plus the main thread, idle in join)
  c  deep500.py   one thread, 500 frames deep
each in blocking (target paused per sample) and non-blocking mode (austin has
no blocking mode).  The target is pinned to CPU 0, every profiler to CPU 1.

A "sample" is one pass over all threads of the process.  Each profiler runs
until SIGINT (Ctrl-C) at a wall-clock deadline, never by its own duration
(py-spy's --duration counts samples, so a profiler that lags would run on).
Per (workload, mode, profiler):

  cpu/1k @1kHz   profiler CPU (user+sys, from wait4) per 1,000 samples at
                 --rate 1000, steady state: (CPU of a long run - CPU of a short
                 run) / (samples of the long run - samples of the short run),
                 so start-up (interpreter discovery, Python imports) is left out;
  max rate       samples per second achieved when asked for 10,000/s, pinned
                 to one core, steady state (same long-minus-short difference);
  cpu/1k @max    CPU per 1,000 samples in that saturated run;
  vm_readv/smp   process_vm_readv calls per sample, from `strace -f -c`
                 (long-minus-short again, at 1000/s; strace slows the profiler,
                 not the count);  read_calls/smp: pyspy-repl's own count
                 (ProcessMemory.read_calls) in the loop sampler;
  speed @100Hz, @1kHz
                 the target's progress rate while profiled, as a fraction of
                 its rate measured just before (1.00 = no slowdown), skipping
                 the profiler's first 1.5 s (its start-up).

pyspy-repl: `pyspy-repl record` (started as the installed script starts it) when repl/commands/record.py exists,
else bench/_loop_sampler.py (attach + Target.sample(blocking=...) on a deadline
loop) -- the report says which was used (--pyspy-repl-mode to force one).
Ratios: pyspy-repl / py-spy and pyspy-repl / austin.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

WORKLOADS = {  # key: (script, threads per sample, description)
    "a": ("deep50.py", 1, "1 thread x 50 frames"),
    "b": ("threads8.py", 9, "8 threads x 20 frames"),
    "c": ("deep500.py", 1, "1 thread x 500 frames"),
}
TARGET_CPU, PROFILER_CPU = 0, 1
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Settings:
    def __init__(self, quick: bool):
        # Every short run must outlast pyspy-repl's start-up (Python + imports + attach,
        # about 1.2 s wall on this machine; several seconds under strace).
        self.run = 3.2 if quick else 5.0          # slowdown runs at 100 and 1000 Hz (long run at 1 kHz)
        self.short = 1.8 if quick else 2.0        # short runs for the start-up subtraction
        self.skip = 1.5                           # slowdown window starts this long after launch
        self.baseline = 1.0 if quick else 2.0     # unprofiled window just before each slowdown run
        self.max_run = 3.5 if quick else 5.0      # the 10 kHz run
        self.strace = (3.0, 4.5) if quick else (3.0, 6.0)


class Profilers:
    def __init__(self, tools, tool_python: str, mode: str):
        self.pyspy = tools["PYSPY"]
        self.austin = tools["AUSTIN"]
        self.strace = tools.get("STRACE") or shutil.which("strace")
        self.tool_python = tool_python
        has_record = os.path.exists(os.path.join(C.REPO, "repl", "commands", "record.py"))
        self.repl_mode = mode if mode != "auto" else ("record" if has_record else "loop")

    def names(self, blocking: bool):
        return ["pyspy-repl", "py-spy"] + ([] if blocking else ["austin"])

    def argv(self, name: str, pid: int, rate: int, blocking: bool, out: str):
        if name == "py-spy":
            return [self.pyspy, "record", "--pid", str(pid), "--rate", str(rate), "--idle", "--format", "raw",
                    "-o", out] + ([] if blocking else ["--nonblocking"])
        if name == "austin":
            return [self.austin, "-p", str(pid), "-i", "%dus" % max(1, int(1e6 / rate)), "-o", os.devnull]
        if self.repl_mode == "record":
            return C.pyspy_repl_argv(self.tool_python) + ["record", "--pid", str(pid), "--rate", str(rate), "--idle",
                    "--format", "raw", "-o", out] + ([] if blocking else ["--nonblocking"])
        return [self.tool_python, os.path.join(C.BENCH, "_loop_sampler.py"), "--pid", str(pid), "--rate",
                str(rate)] + ([] if blocking else ["--nonblocking"])


def _children(pid: int):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def run_profiler(prof: Profilers, name: str, target: C.Target, threads: int, rate: int, blocking: bool,
                 seconds: float, strace: bool = False, window=None) -> dict:
    """Run one profiler for ``seconds`` of wall time, stop it with SIGINT, and count."""
    scratch = tempfile.mkdtemp(prefix="pyspy-sampling-")
    out = os.path.join(scratch, "out.raw")
    argv = prof.argv(name, target.pid, rate, blocking, out)
    trace_file = os.path.join(scratch, "strace")
    if strace:
        argv = [prof.strace, "-f", "-c", "-o", trace_file, "--"] + argv
    env = C.pyspy_repl_env() if name == "pyspy-repl" else None
    stdout_path, stderr_path = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
    with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
        launched = time.monotonic()
        proc = subprocess.Popen(C.pin(PROFILER_CPU) + argv, stdout=so, stderr=se, env=env, cwd=C.REPO)
        time.sleep(max(0.0, launched + seconds - time.monotonic()))
        stopped = time.monotonic()
        victim = proc
        if strace:  # stop the traced profiler, not strace (strace would just detach)
            kids = _children(proc.pid)
            victim = None
            if kids:
                os.kill(kids[0], signal.SIGINT)
            else:
                proc.send_signal(signal.SIGINT)
        if victim is not None:
            C.stop(victim)
        else:
            deadline = time.monotonic() + 30
            while not C.exited(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not C.exited(proc.pid):
                proc.kill()
        usage = C.wait_rusage(proc)
    with open(stdout_path, errors="replace") as f:
        stdout = f.read()
    with open(stderr_path, errors="replace") as f:
        stderr = f.read()
    result = {"cpu": usage.ru_utime + usage.ru_stime, "wall": stopped - launched, "launched": launched,
              "stopped": stopped, "rc": proc.returncode, "samples": None}
    if name == "pyspy-repl" and prof.repl_mode == "loop":
        try:
            stats = json.loads(stdout.strip().splitlines()[-1])
            result.update({"samples": stats["samples"], "read_calls": stats["read_calls"],
                           "loop_cpu": stats["loop_cpu"], "loop_wall": stats["loop_wall"]})
        except (ValueError, IndexError, KeyError):
            pass
    elif name == "pyspy-repl" and C.recorded_samples(stderr) is not None:
        # record's summary counts thread stacks (like py-spy's raw counts): passes = that / threads
        result["samples"] = C.recorded_samples(stderr) / threads
    elif name == "austin":
        m = re.search(r"Error rate\s*:\s*(\d+)/(\d+)", _ANSI.sub("", stderr))
        if m:
            result["samples"] = int(m.group(2)) / threads
    elif os.path.exists(out):
        total = 0
        with open(out, errors="replace") as f:
            for line in f:
                parts = line.rsplit(None, 1)
                if len(parts) == 2 and parts[1].isdigit():
                    total += int(parts[1])
        result["samples"] = total / threads
    if strace and os.path.exists(trace_file):
        calls = {}
        with open(trace_file) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
                    try:
                        calls[parts[-1]] = int(parts[3])
                    except ValueError:
                        pass
        result["syscalls"] = calls
    if result["samples"] is None:
        result["error"] = (stderr.strip().splitlines() or ["no output"])[-1][:200]
    shutil.rmtree(scratch, ignore_errors=True)
    state = target.state()
    if "T" in state or "t" in state or state == "gone":
        raise RuntimeError("%s left the target in state %r" % (name, state))
    return result


def _delta(long: dict, short: dict, key: str):
    if long.get("samples") is None or short.get("samples") is None:
        return None
    ds = long["samples"] - short["samples"]
    if ds <= 0:
        return None
    return (long[key] - short[key]) / ds


def measure(prof: Profilers, name: str, target: C.Target, threads: int, blocking: bool, s: Settings,
            log) -> dict:
    r = {}
    # slowdown at 100 Hz and 1 kHz (the 1 kHz run doubles as the long CPU run)
    for rate in (100, 1000):
        time.sleep(s.baseline)
        now = time.monotonic()
        base = target.rate(now - s.baseline, now)
        run = run_profiler(prof, name, target, threads, rate, blocking, s.run)
        profiled = target.rate(run["launched"] + s.skip, run["stopped"])
        r["speed_%d" % rate] = profiled / base if base and profiled else None
        r["run_%d" % rate] = run
    short = run_profiler(prof, name, target, threads, 1000, blocking, s.short)
    long = r["run_1000"]
    r["cpu_per_1k_1khz"] = _delta(long, short, "cpu")
    if "loop_cpu" in long and long.get("samples"):  # the loop sampler knows its own steady state
        r["cpu_per_1k_1khz_loop"] = long["loop_cpu"] / long["samples"]
        r["read_calls_per_sample"] = long["read_calls"] / long["samples"]
    if r["cpu_per_1k_1khz"] is not None:
        r["cpu_per_1k_1khz"] *= 1000 * 1000  # ms per 1,000 samples
    if r.get("cpu_per_1k_1khz_loop") is not None:
        r["cpu_per_1k_1khz_loop"] *= 1000 * 1000
    # highest sustained rate: ask for 10 kHz
    max_long = run_profiler(prof, name, target, threads, 10000, blocking, s.max_run)
    max_short = run_profiler(prof, name, target, threads, 10000, blocking, s.short)
    per_sample_wall = _delta(max_long, max_short, "wall")
    r["max_rate"] = 1 / per_sample_wall if per_sample_wall else None
    r["max_samples"] = max_long.get("samples")
    r["max_seconds"] = s.max_run
    cpu = _delta(max_long, max_short, "cpu")
    r["cpu_per_1k_max"] = cpu * 1e6 if cpu is not None else None
    if "loop_cpu" in max_long and max_long.get("samples"):
        r["max_rate_loop"] = max_long["samples"] / max_long["loop_wall"]
    # system calls per sample
    if prof.strace:
        t_short = run_profiler(prof, name, target, threads, 1000, blocking, s.strace[0], strace=True)
        t_long = run_profiler(prof, name, target, threads, 1000, blocking, s.strace[1], strace=True)
        for call in ("process_vm_readv", "ptrace"):
            a = dict(t_long, n=t_long.get("syscalls", {}).get(call, 0))
            b = dict(t_short, n=t_short.get("syscalls", {}).get(call, 0))
            r["%s_per_sample" % call] = _delta(a, b, "n")
        r["strace_samples"] = (t_short.get("samples"), t_long.get("samples"))
    errors = [x.get("error") for x in (long, short, max_long, max_short) if x.get("error")]
    if errors:
        r["errors"] = errors
    log("    %-10s %-11s cpu/1k@1kHz=%s max=%s/s vm_readv/smp=%s speed@100=%s @1k=%s%s" % (
        name, "blocking" if blocking else "nonblocking", C.fmt(r.get("cpu_per_1k_1khz"), 0),
        C.fmt(r.get("max_rate"), 0), C.fmt(r.get("process_vm_readv_per_sample"), 1),
        C.fmt(r.get("speed_100")), C.fmt(r.get("speed_1000")), (" errors: %s" % errors[0]) if errors else ""))
    return r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=C.DEFAULT_PYTHON, help="interpreter running every workload")
    parser.add_argument("--tool-python", default=None,
                        help="interpreter running pyspy-repl (default: setup.sh's venv of its dependencies)")
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 3-4 minutes)")
    parser.add_argument("--workloads", default="a,b,c")
    parser.add_argument("--modes", default="blocking,nonblocking")
    parser.add_argument("--profilers", default="pyspy-repl,py-spy,austin")
    parser.add_argument("--pyspy-repl-mode", choices=("auto", "record", "loop"), default="auto")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    s = Settings(args.quick)
    tools = C.tools()
    args.tool_python = args.tool_python or tools.get("TOOL_PYTHON") or sys.executable
    prof = Profilers(tools, args.tool_python, args.pyspy_repl_mode)
    started = time.monotonic()
    header = ["# sampling bench: %s" % C.machine_line(args.python),
              "# py-spy %s, austin %s, pyspy-repl via %s; strace: %s; target on CPU %d, profilers on CPU %d%s" % (
                  tools.get("PYSPY_VERSION"), tools.get("AUSTIN_VERSION"),
                  "`repl.cli record`" if prof.repl_mode == "record" else "bench/_loop_sampler.py (Target.sample loop)",
                  "yes" if prof.strace else "no (syscall counts skipped)", TARGET_CPU, PROFILER_CPU,
                  ", --quick" if args.quick else "")]
    print("\n".join(header), flush=True)
    log = lambda text: print(text, flush=True)  # noqa: E731
    wanted = args.profilers.split(",")
    results = {}
    for key in args.workloads.split(","):
        script, threads, desc = WORKLOADS[key]
        log("  workload %s: %s" % (key, desc))
        with C.Target(args.python, script, cpu=TARGET_CPU) as target:
            time.sleep(1.0)
            for mode in args.modes.split(","):
                blocking = mode == "blocking"
                for name in prof.names(blocking):
                    if name not in wanted:
                        continue
                    results[(key, mode, name)] = measure(prof, name, target, threads, blocking, s, log)
    elapsed = time.monotonic() - started
    print()
    print(report(results, args.workloads.split(","), args.modes.split(",")))
    print("\n(%.0f s; repl via %s)" % (elapsed, prof.repl_mode))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "elapsed": elapsed,
                       "results": {"/".join(k): v for k, v in results.items()}}, f, indent=1, default=str)
    return 0


def report(results: dict, workloads, modes) -> str:
    rows = []
    for key in workloads:
        for mode in modes:
            for name in ("pyspy-repl", "py-spy", "austin"):
                r = results.get((key, mode, name))
                if r is None:
                    continue
                cpu = r.get("cpu_per_1k_1khz")
                rows.append([
                    "%s %s" % (key, WORKLOADS[key][2]), mode, name,
                    C.fmt(cpu, 0),
                    C.fmt(r.get("max_rate"), 0),
                    C.fmt(r.get("cpu_per_1k_max"), 0),
                    C.fmt(r.get("process_vm_readv_per_sample"), 1),
                    C.fmt(r.get("read_calls_per_sample"), 1) if name == "pyspy-repl" else "",
                    C.fmt(r.get("speed_100")), C.fmt(r.get("speed_1000")),
                ])
    out = [C.table(["workload", "mode", "profiler", "cpu ms/1k smp @1kHz", "max rate /s", "cpu ms/1k @max",
                    "vm_readv /smp", "read_calls /smp", "speed @100Hz", "speed @1kHz"], rows)]
    ratio_rows = []
    for key in workloads:
        for mode in modes:
            mine = results.get((key, mode, "pyspy-repl"))
            if mine is None:
                continue
            for other in ("py-spy", "austin"):
                theirs = results.get((key, mode, other))
                if theirs is None:
                    continue
                ratio_rows.append([
                    "%s %s" % (key, WORKLOADS[key][2]), mode, "vs " + other,
                    C.ratio(mine.get("cpu_per_1k_1khz"), theirs.get("cpu_per_1k_1khz")),
                    C.ratio(mine.get("max_rate"), theirs.get("max_rate")),
                    C.ratio(mine.get("process_vm_readv_per_sample"), theirs.get("process_vm_readv_per_sample")),
                    C.ratio(mine.get("speed_100"), theirs.get("speed_100")),
                    C.ratio(mine.get("speed_1000"), theirs.get("speed_1000")),
                ])
    out.append("")
    out.append("Ratios pyspy-repl / other (cpu and vm_readv: below 1 is better; max rate and speed: above 1 is better)")
    out.append(C.table(["workload", "mode", "", "cpu/1k @1kHz", "max rate", "vm_readv/smp", "speed @100Hz",
                        "speed @1kHz"], ratio_rows))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
