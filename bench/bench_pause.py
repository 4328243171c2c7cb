"""How long a snapshot freezes its target, measured from inside the target.

    python bench/bench_pause.py [PYTHON] [--rounds N]

tests/targets/pause_target.py keeps a heartbeat thread that wakes every
millisecond and records the longest gap between two wake-ups; a pause shows
up as one long gap.  For 10, 100 and 1,000 waiting threads and one thread
10,000 frames deep, with and without locals, this prints the longest gap
over N snapshots (after one warm-up snapshot that fills the code cache), the
heartbeat's own idle gap for comparison, and the snapshot's wall time.
Numbers depend on the machine and its load: this is a bench, not a test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

import pythons  # noqa: E402
from snapshot.target import attach  # noqa: E402

CASES = [(10, 0), (100, 0), (1000, 0), (0, 10000)]


def measure(python: str, threads: int, depth: int, with_locals: bool, rounds: int) -> dict:
    ready = os.path.join(tempfile.mkdtemp(prefix="pyspy-bench-pause-"), "ready")
    proc = subprocess.Popen([python, pythons.target_script("pause_target.py"), ready,
                             "--threads", str(threads), "--depth", str(depth)],
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
        gaps, idle, walls = [], [], []
        for _ in range(rounds):
            time.sleep(0.2)
            ask("reset")
            time.sleep(0.05)
            idle.append(float(ask("gap")))
            ask("reset")
            t0 = time.monotonic()
            target.snapshot(locals=with_locals)
            walls.append(time.monotonic() - t0)
            time.sleep(0.02)
            gaps.append(float(ask("gap")))
        target.close()
        return {"threads": threads, "depth": depth, "locals": with_locals,
                "longest_pause_ms": max(gaps), "median_pause_ms": sorted(gaps)[len(gaps) // 2],
                "idle_gap_ms": max(idle), "snapshot_s": round(max(walls), 3)}
    finally:
        proc.kill()
        proc.wait()


def main(argv) -> int:
    python = argv[0] if argv and not argv[0].startswith("-") else sys.executable
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 5
    for threads, depth in CASES:
        for with_locals in (False, True):
            print(json.dumps(measure(python, threads, depth, with_locals, rounds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
