"""How long a snapshot freezes its target, measured from inside the target.

    python bench/bench_pause.py [PYTHON] [--rounds N] [--cases 1000,deep] [--repo CHECKOUT]

tests/targets/pause_target.py keeps a heartbeat thread that wakes every
millisecond and records its gaps; a pause shows up as one long gap.  For 10,
100 and 1,000 waiting threads and one thread 10,000 frames deep, with and
without locals, this prints over N snapshots (after one warm-up snapshot that
fills the code cache):

* ``pause_ms``: the heartbeat's longest gap that overlaps the pause window
  (the tool notes CLOCK_MONOTONIC at the stop and at the detach): the freeze the
  pause caused, median and longest;
* ``window_ms``: the tool's own stop-to-detach time (its wall clock);
* ``any_gap_ms``: the longest gap during the whole snapshot, reading names
  and locals after the pause included (on a loaded machine, scheduling noise);
* ``idle_gap_ms``: the heartbeat's longest gap with the tool idle, and the
  machine's load average, to judge the rest against.

``--repo`` measures another checkout's engine (e.g. the main branch, for a
before/after).  ``--cases`` picks some of: 10, 100, 1000, deep.  Numbers
depend on the machine and its load: this is a bench, not a test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = sys.argv[1:]
REPO = os.path.abspath(ARGS[ARGS.index("--repo") + 1]) if "--repo" in ARGS else os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from snapshot.target import attach  # noqa: E402

CASES = {"10": (10, 0), "100": (100, 0), "1000": (1000, 0), "deep": (0, 10000)}


def _watch_pause(target, windows):
    """Note each pause window of ``target`` (CLOCK_MONOTONIC, as the heartbeat's)."""
    process = target.process
    inner = process.paused

    @contextmanager
    def paused():
        with inner() as stopped:
            start = time.monotonic()
            try:
                yield stopped
            finally:
                windows.append((start, time.monotonic()))

    process.paused = paused


def measure(python: str, threads: int, depth: int, with_locals: bool, rounds: int) -> dict:
    ready = os.path.join(tempfile.mkdtemp(prefix="pyspy-bench-pause-"), "ready")
    proc = subprocess.Popen([python, os.path.join(os.path.dirname(HERE), "tests", "targets", "pause_target.py"),
                             ready, "--threads", str(threads), "--depth", str(depth)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        while not os.path.exists(ready):
            if proc.poll() is not None:
                raise SystemExit("the target exited early")
            time.sleep(0.02)

        def ask(word: str) -> str:
            proc.stdin.write(word + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        target = attach(proc.pid)
        target.snapshot(locals=with_locals)
        windows = []
        _watch_pause(target, windows)
        pauses, gaps, idle, spans = [], [], [], []
        for _ in range(rounds):
            time.sleep(0.2)
            ask("reset")
            time.sleep(0.05)
            idle.append(float(ask("gap")))
            ask("reset")
            del windows[:]
            target.snapshot(locals=with_locals)
            time.sleep(0.02)
            gaps.append(float(ask("gap")))
            start, end = windows[0]
            spans.append((end - start) * 1000)
            # the stop itself happens just before ``start``: widen the window by the attach
            pauses.append(float(ask("gap-over %.6f %.6f" % (start - 0.0005, end))))
        target.close()
        median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
        return {"threads": threads, "depth": depth, "locals": with_locals,
                "pause_ms": {"median": median(pauses), "longest": max(pauses)},
                "window_ms": {"median": round(median(spans), 1), "longest": round(max(spans), 1)},
                "any_gap_ms": max(gaps), "idle_gap_ms": max(idle), "load": os.getloadavg()[0]}
    finally:
        proc.kill()
        proc.wait()


def main(argv) -> int:
    python = argv[0] if argv and not argv[0].startswith("-") else sys.executable
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 5
    names = argv[argv.index("--cases") + 1].split(",") if "--cases" in argv else list(CASES)
    for name in names:
        threads, depth = CASES[name]
        for with_locals in (False, True):
            print(json.dumps(measure(python, threads, depth, with_locals, rounds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
