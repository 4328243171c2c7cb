#!/usr/bin/env python3
"""Every row of issue 13's table in one run, as ratios against py-spy and austin.

    python3 bench/bench_issue13.py [--quick] [--runs N] [--memory-seconds S] [--repo DIR] [--json FILE]

Rows (targets run by --python, default pyenv 3.12.1; pyspy-repl by --tool-python
from --repo, default this work tree):

1. one-shot `dump --pid` of bench/workloads/dump20.py (20 threads), CPU (user+sys
   from wait4) of the whole CLI process, warm per-binary cache, median of N
   interleaved runs against `py-spy dump --pid`;
2. its breakdown (bench/_dump_phases.py runs the same dump in one process and
   splits its CPU): interpreter start-up (with `site`, and the `-S` floor),
   imports, attach, walk + names (snapshot and rendering);
3. CPU per 1,000 samples at 1 kHz, non-blocking, workloads (a) deep50 and (b)
   threads8: (CPU of a long run - CPU of a short run) / (their sample counts'
   difference), as in bench_sampling.py, for pyspy-repl, py-spy and austin, and for
   Python's floor (bench/_floor_sampler.py: the least any Python sampler does per
   pass, a lower bound for pyspy-repl measured the same way);
4. `record --pid -d 1` (default rate, blocking): wall time from launch to the
   first sample, seen from outside as the first moment the target has a tracer
   (/proc/PID/status TracerPid, polled every ~0.5 ms), and the whole run's wall time;
5. blocking mode at 1 kHz: target speed while profiled / speed just before
   (1.00 = no slowdown), ours against py-spy's, workloads a and b;
6. memory of a long record: pyspy-repl and py-spy side by side (non-blocking,
   so that both can read the same target) at 100 Hz with --idle on the
   20-thread target for --memory-seconds (default 90 s); RSS is read every
   second and RSS at 10 and 60 minutes is projected from the slope of the
   second half of the run (stated as a projection unless the run lasted that long).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import bench_sampling as S  # noqa: E402


def cli_cpu(argv, env, cwd=None):
    """Run a command to completion; return (user+sys CPU, wall, stderr)."""
    t = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    err = proc.stderr.read()
    usage = C.wait_rusage(proc)
    wall = time.monotonic() - t
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(argv), proc.returncode, err.decode()[-400:]))
    return usage.ru_utime + usage.ru_stime, wall, err.decode(errors="replace")


#: The least a Python sampler does per pass (bench/_floor_sampler.py), run like pyspy-repl.
FLOOR = "python floor"


def run(prof, name, target, threads, rate, blocking, seconds):
    """One profiler run of ``seconds`` of sampling.

    py-spy and austin start in milliseconds, so they are stopped by SIGINT at a wall-clock
    deadline (bench_sampling.run_profiler).  pyspy-repl's start-up (Python, imports, attach)
    takes seconds on a loaded machine, which a deadline would cut into; it gets ``-d SECONDS``
    instead (counted from its first sample) and runs to completion, so long-minus-short
    still cancels its start-up exactly.  ``sampling_from`` is where its sampling began
    (stop minus the duration), for the slowdown window.
    """
    if name not in ("pyspy-repl", FLOOR):
        result = S.run_profiler(prof, name, target, threads, rate, blocking, seconds)
        result["sampling_from"] = result["launched"] + 1.5
        return result
    scratch = tempfile.mkdtemp(prefix="pyspy-issue13-")
    try:
        if name == FLOOR:
            argv = [prof.tool_python, os.path.join(C.BENCH, "_floor_sampler.py"), "--pid", str(target.pid),
                    "--rate", str(rate), "-d", str(seconds)]
        else:
            argv = prof.argv(name, target.pid, rate, blocking, os.path.join(scratch, "out.raw")) + ["-d", str(seconds)]
        err_path = os.path.join(scratch, "stderr")
        with open(err_path, "wb") as err_file:
            launched = time.monotonic()
            proc = subprocess.Popen(C.pin(S.PROFILER_CPU) + argv, stdout=subprocess.DEVNULL, stderr=err_file,
                                    env=C.pyspy_repl_env(), cwd=C.REPO)
            deadline = launched + seconds + 120
            while not C.exited(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            stopped = time.monotonic()
            if not C.exited(proc.pid):
                proc.kill()
            usage = C.wait_rusage(proc)
        with open(err_path, errors="replace") as f:
            err = f.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if os.environ.get("PYSPY_BENCH_ERR"):
        with open(os.environ["PYSPY_BENCH_ERR"], "a") as f:
            f.write("%s %s blocking=%s: %s\n" % (name, seconds, blocking, err.strip()))
    count = C.recorded_samples(err)
    result = {"cpu": usage.ru_utime + usage.ru_stime, "wall": stopped - launched, "launched": launched, "stopped": stopped,
              "sampling_from": stopped - seconds, "samples": count / threads if count is not None else None}
    if count is None:
        result["error"] = (err.strip().splitlines() or ["no output"])[-1][:200]
    return result


def tracer_pid(pid: int) -> int:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def dump_rows(args, tools, env, log):
    pyspy = tools["PYSPY"]
    out = {}
    with C.Target(args.python, "dump20.py") as target:
        pid = str(target.pid)
        ours = C.pyspy_repl_argv(args.tool_python) + ["dump", "--pid", pid]
        theirs = [pyspy, "dump", "--pid", pid]
        phases_argv = [args.tool_python, os.path.join(C.BENCH, "_dump_phases.py"), pid]
        for argv in (ours, theirs, phases_argv):  # prime the per-binary cache and the page cache
            cli_cpu(argv, env, cwd=args.repo)
        cpu = {"pyspy-repl": [], "py-spy": []}
        phases = []
        floor = {"site": [], "nosite": []}
        for _ in range(args.runs):
            cpu["pyspy-repl"].append(cli_cpu(ours, env, cwd=args.repo)[0])
            cpu["py-spy"].append(cli_cpu(theirs, env)[0])
            err = cli_cpu(phases_argv, env, cwd=args.repo)[2]
            for line in err.splitlines():
                if line.startswith("PHASES "):
                    phases.append(json.loads(line[7:]))
            floor["site"].append(cli_cpu([args.tool_python, "-c", "pass"], env)[0])
            floor["nosite"].append(cli_cpu([args.tool_python, "-S", "-c", "pass"], env)[0])
    for tool, values in cpu.items():
        out[tool] = C.median(values)
        out[tool + " range"] = (min(values), max(values))
    for key in ("startup", "imports", "attach", "walk", "other", "total"):
        out["phase " + key] = C.median([p[key] for p in phases])
    out["floor site"] = C.median(floor["site"])
    out["floor nosite"] = C.median(floor["nosite"])
    log("  dump: ours %.1f ms CPU, py-spy %.1f ms" % (out["pyspy-repl"] * 1e3, out["py-spy"] * 1e3))
    return out


def sampling_rows(args, prof, log):
    out = {}
    for key in ("a", "b"):
        script, threads, desc = S.WORKLOADS[key]
        with C.Target(args.python, script, cpu=S.TARGET_CPU) as target:
            time.sleep(1.0)
            for name in ("pyspy-repl", "py-spy", "austin", FLOOR):
                values = []
                for _ in range(args.sampling_repeats):
                    long = run(prof, name, target, threads, 1000, False, args.long)
                    short = run(prof, name, target, threads, 1000, False, args.short)
                    per = S._delta(long, short, "cpu")
                    if per is not None:
                        values.append(per * 1e6)
                    else:
                        log("    %s: no steady-state figure (samples %s then %s; %s)" % (
                            name, short.get("samples"), long.get("samples"),
                            long.get("error") or short.get("error") or "too few samples"))
                out[(key, name)] = C.median(values) if values else None
                log("  sampling %s %-10s cpu ms/1k @1kHz: %s" % (key, name, ", ".join("%.0f" % v for v in values)))
            for name in ("pyspy-repl", "py-spy"):  # blocking slowdown at 1 kHz
                # A tool that cannot keep 1 kHz pauses less often and so slows the target less:
                # the pauses it took per second are kept, and the target time lost per pause
                # ((1 - speed) / pauses per second) compares the tools' pauses themselves.
                speeds, rates = [], []
                for _ in range(args.sampling_repeats):
                    time.sleep(args.baseline)
                    now = time.monotonic()
                    base = target.rate(now - args.baseline, now)
                    one = run(prof, name, target, threads, 1000, True, args.long)
                    profiled = target.rate(one["sampling_from"], one["stopped"])
                    if base and profiled and one.get("samples"):
                        speeds.append(profiled / base)
                        # ours samples for exactly -d seconds; py-spy from its launch (milliseconds) to SIGINT
                        rates.append(one["samples"] / (args.long if name == "pyspy-repl" else one["wall"]))
                out[(key, name, "blocking speed")] = C.median(speeds) if speeds else None
                out[(key, name, "blocking rate")] = C.median(rates) if rates else None
                log("  blocking %s %-10s speed @1kHz: %s (pauses/s %s)" % (
                    key, name, ", ".join("%.2f" % v for v in speeds), ", ".join("%.0f" % v for v in rates)))
    return out


def first_sample_rows(args, tools, env, log):
    """`record --pid -d 1` wall time to the first sample (first ptrace stop) and in all."""
    out = {}
    scratch = tempfile.mkdtemp(prefix="pyspy-first-")
    try:
        with C.Target(args.python, "deep50.py", cpu=S.TARGET_CPU) as target:
            cmds = {
                "pyspy-repl": C.pyspy_repl_argv(args.tool_python) + ["record", "--pid", str(target.pid), "-d", "1",
                               "--format", "raw", "-o", os.path.join(scratch, "ours.raw")],
                "py-spy": [tools["PYSPY"], "record", "--pid", str(target.pid), "-d", "1", "--format", "raw",
                           "-o", os.path.join(scratch, "theirs.raw")],
            }
            firsts = {k: [] for k in cmds}
            walls = {k: [] for k in cmds}
            for _ in range(args.runs):
                for name, argv in cmds.items():
                    t = time.monotonic()
                    proc = subprocess.Popen(argv, env=env if name == "pyspy-repl" else None, cwd=args.repo,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    first = None
                    while proc.poll() is None:
                        if first is None and tracer_pid(target.pid):
                            first = time.monotonic() - t
                        time.sleep(0.0005)
                    walls[name].append(time.monotonic() - t)
                    if first is not None:
                        firsts[name].append(first)
                    time.sleep(0.2)
            for name in cmds:
                out[name] = C.median(firsts[name]) if firsts[name] else None
                out[name + " wall"] = C.median(walls[name])
            log("  first sample: %s" % {k: ("%.3f" % v if isinstance(v, float) else v) for k, v in out.items()})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def memory_rows(args, tools, env, log):
    """RSS of a long 100 Hz --idle record of the 20-thread target, both tools at once."""
    scratch = tempfile.mkdtemp(prefix="pyspy-mem-")
    out = {}
    try:
        with C.Target(args.python, "dump20.py") as target:
            pid = str(target.pid)
            procs = {
                "pyspy-repl": subprocess.Popen(
                    C.pyspy_repl_argv(args.tool_python) + ["record", "--pid", pid, "--rate", "100", "--idle",
                     "--nonblocking", "--format", "raw", "-o", os.path.join(scratch, "ours.raw")],
                    env=env, cwd=args.repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                "py-spy": subprocess.Popen(
                    [tools["PYSPY"], "record", "--pid", pid, "--rate", "100", "--idle", "--nonblocking",
                     "--format", "raw", "-o", os.path.join(scratch, "theirs.raw")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
            }
            series = {k: [] for k in procs}
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.memory_seconds:
                time.sleep(1.0)
                now = time.monotonic() - t0
                for name, proc in procs.items():
                    value = rss_kib(proc.pid)
                    if value is not None:
                        series[name].append((now, value))
            for name, proc in procs.items():
                C.stop(proc)
                err = proc.stderr.read().decode(errors="replace")
                C.wait_rusage(proc)
                out[name + " summary"] = (err.strip().splitlines() or [""])[-1][:160]
            for name, points in series.items():
                half = [p for p in points if p[0] >= args.memory_seconds / 2]
                if len(half) < 2:
                    continue
                n = len(half)
                mx = sum(p[0] for p in half) / n
                my = sum(p[1] for p in half) / n
                var = sum((p[0] - mx) ** 2 for p in half) or 1.0
                slope = sum((p[0] - mx) * (p[1] - my) for p in half) / var  # KiB per second
                last_t, last = points[-1]
                out[name] = {"rss_end_mib": last / 1024, "seconds": last_t, "slope_kib_per_min": slope * 60,
                             "rss_10min_mib": (last + max(0.0, slope) * max(0.0, 600 - last_t)) / 1024,
                             "rss_60min_mib": (last + max(0.0, slope) * max(0.0, 3600 - last_t)) / 1024,
                             "peak_mib": max(p[1] for p in points) / 1024}
            log("  memory: %s" % json.dumps({k: v for k, v in out.items() if isinstance(v, dict)}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def report(args, d, s, f, m) -> str:
    ms = lambda v: "n/a" if v is None else "%.1f" % (v * 1e3)  # noqa: E731
    rows = [["one-shot `dump --pid` of the 20-thread target, CPU ms (warm cache)",
             "%s (%s-%s)" % (ms(d["pyspy-repl"]), ms(d["pyspy-repl range"][0]), ms(d["pyspy-repl range"][1])),
             "%s (%s-%s)" % (ms(d["py-spy"]), ms(d["py-spy range"][0]), ms(d["py-spy range"][1])), "-",
             C.ratio(d["pyspy-repl"], d["py-spy"]), "-", "<= 2x py-spy"],
            ["  of which: start-up (site) / imports / attach / walk + names / other, CPU ms",
             " / ".join(ms(d["phase " + k]) for k in ("startup", "imports", "attach", "walk", "other")),
             "", "", "", "", ""],
            ["  floor: `python -c pass` / `python -S -c pass` CPU ms",
             "%s / %s" % (ms(d["floor site"]), ms(d["floor nosite"])), "", "", "", "", ""]]
    for key, desc in (("a", "1 thread x 50 frames"), ("b", "8 threads x 20 frames")):
        mine, py, au = s[(key, "pyspy-repl")], s[(key, "py-spy")], s[(key, "austin")]
        rows.append(["CPU ms per 1,000 samples at 1 kHz, non-blocking, (%s) %s" % (key, desc),
                     C.fmt(mine, 0), C.fmt(py, 0), C.fmt(au, 0), C.ratio(mine, py), C.ratio(mine, au), "<= austin"])
        floor = s[(key, FLOOR)]
        rows.append(["  Python's floor (bench/_floor_sampler.py: sleep, one read, a count per thread), (%s)" % key,
                     C.fmt(floor, 0), "", "", "", C.ratio(floor, au), "(a lower bound for us)"])
    rows.append(["`record --pid -d 1`, wall s to the first sample (whole run)",
                 "%s (%s)" % (C.fmt(f["pyspy-repl"], 3), C.fmt(f["pyspy-repl wall"], 3)),
                 "%s (%s)" % (C.fmt(f["py-spy"], 3), C.fmt(f["py-spy wall"], 3)), "-",
                 C.ratio(f["pyspy-repl"], f["py-spy"]),
                 "", "<= py-spy + 0.050 (%s)" % ("%+.3f s" % (f["pyspy-repl"] - f["py-spy"])
                                               if f["pyspy-repl"] and f["py-spy"] else "n/a")])
    for key, desc in (("a", "1x50"), ("b", "8x20")):
        mine, py = s[(key, "pyspy-repl", "blocking speed")], s[(key, "py-spy", "blocking speed")]
        rows.append(["blocking 1 kHz: target speed while profiled (1.00 = none), (%s) %s" % (key, desc),
                     C.fmt(mine), C.fmt(py), "-", C.ratio(mine, py), "-", "(above 1: target slowed less)"])
        rate_mine, rate_py = s[(key, "pyspy-repl", "blocking rate")], s[(key, "py-spy", "blocking rate")]
        rows.append(["  pauses per second achieved (asked: 1,000), (%s)" % key,
                     C.fmt(rate_mine, 0), C.fmt(rate_py, 0), "-", "", "", ""])
        lost = [None if v is None or not r else (1 - v) / r * 1e3 for v, r in ((mine, rate_mine), (py, rate_py))]
        rows.append(["  target ms lost per pause, (1 - speed) / pauses per s, (%s)" % key,
                     C.fmt(lost[0], 2), C.fmt(lost[1], 2), "-", C.ratio(lost[0], lost[1]), "", "(below 1: cheaper pause)"])
    mr, mp = m.get("pyspy-repl"), m.get("py-spy")
    if mr and mp:
        projected = max(mr["seconds"], mp["seconds"]) < 600
        rows.append(["record 100 Hz --idle, 20 threads: RSS MiB after %.0f s / at 10 min / at 60 min%s" % (
            mr["seconds"], " (projected from the slope of the run's 2nd half)" if projected else ""),
            "%.1f / %.1f / %.1f (%+.1f KiB/min)" % (mr["rss_end_mib"], mr["rss_10min_mib"], mr["rss_60min_mib"],
                                                   mr["slope_kib_per_min"]),
            "%.1f / %.1f / %.1f (%+.1f KiB/min)" % (mp["rss_end_mib"], mp["rss_10min_mib"], mp["rss_60min_mib"],
                                                   mp["slope_kib_per_min"]),
            "-", C.ratio(mr["rss_60min_mib"], mp["rss_60min_mib"]), "-", "bounded"])
    return C.table(["measure", "pyspy-repl", "py-spy", "austin", "vs py-spy", "vs austin", "goal"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=C.DEFAULT_PYTHON, help="interpreter running the targets")
    parser.add_argument("--tool-python", default=None,
                        help="interpreter running pyspy-repl (default: setup.sh's venv of its dependencies)")
    parser.add_argument("--repo", default=C.REPO, help="pyspy-repl tree to measure (default: this one)")
    parser.add_argument("--runs", type=int, default=None, help="CLI runs per cell (default 11, --quick 5)")
    parser.add_argument("--memory-seconds", type=float, default=None, help="memory run length (default 90, --quick 40)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="dump,sampling,first,memory", help="subset of rows to run")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    args.repo = os.path.abspath(args.repo)
    args.runs = args.runs or (5 if args.quick else 11)
    args.memory_seconds = args.memory_seconds or (40.0 if args.quick else 90.0)
    # The short run must outlast every profiler's start-up, which is seconds on a loaded machine.
    args.long, args.short = (6.0, 3.0) if args.quick else (10.0, 4.0)
    args.baseline = 1.5 if args.quick else 2.0
    args.sampling_repeats = 1 if args.quick else 2
    C.REPO = args.repo  # bench_sampling and _common run pyspy-repl from here
    env = C.pyspy_repl_env(tempfile.mkdtemp(prefix="pyspy-issue13-cache-"))
    tools = C.tools()
    args.tool_python = args.tool_python or tools.get("TOOL_PYTHON") or sys.executable
    prof = S.Profilers(tools, args.tool_python, "record")
    log = lambda text: print(text, flush=True)  # noqa: E731
    started = time.monotonic()
    log("# issue-13 bench: %s" % C.machine_line(args.python))
    log("# pyspy-repl from %s; py-spy %s, austin %s; uptime: %s" % (
        args.repo, tools.get("PYSPY_VERSION"), tools.get("AUSTIN_VERSION"),
        subprocess.run(["uptime"], stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()))
    only = args.only.split(",")
    d = dump_rows(args, tools, env, log) if "dump" in only else None
    s = sampling_rows(args, prof, log) if "sampling" in only else None
    f = first_sample_rows(args, tools, env, log) if "first" in only else None
    m = memory_rows(args, tools, env, log) if "memory" in only else None
    elapsed = time.monotonic() - started
    if None in (d, s, f, m):
        print(json.dumps({"dump": d, "first": f, "memory": m,
                          "sampling": {"/".join(map(str, k)): v for k, v in (s or {}).items()}}, indent=1, default=str))
    else:
        print()
        print(report(args, d, s, f, m))
    log("\n(%.0f s; load average at the end %.1f; uptime: %s)" % (
        elapsed, os.getloadavg()[0],
        subprocess.run(["uptime"], stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"dump": d, "first": f, "memory": m,
                       "sampling": {"/".join(map(str, k)): v for k, v in (s or {}).items()}}, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
