"""Snapshot files on the 20-thread target (workloads/dump20.py): size and capture time.

    python3 bench/bench_savefile.py [--runs N] [--python PY]

For each variant (zlib with locals, the default; lzma; --no-locals) it runs
``pyspy-snapshot save`` N times against one dump20 target and prints the
file size, the capture time the tool reports (discovery, then walk +
exploration + stack windows + native unwind inside one pause), how long the
target was paused, the CLI's wall time, and the wall time of
``dump --load FILE --locals``.  Medians; warm binary cache.
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

SAVE = "import sys; sys.argv[0] = 'pyspy-snapshot'; from repl.cli import snapshot_console_main; snapshot_console_main()"


def timed(argv, env):
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), proc.returncode, proc.stderr[-500:]))
    return time.perf_counter() - started, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=C.DEFAULT_PYTHON, help="interpreter running the target")
    parser.add_argument("--tool-python", default=sys.executable, help="interpreter running pyspy-repl")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="pyspy-save-bench-")
    env = C.pyspy_repl_env(os.path.join(scratch, "cache"))
    rows = []
    try:
        with C.Target(args.python, "dump20.py") as target:
            for label, extra in (("zlib, locals (default)", []), ("lzma, locals", ["--compression", "lzma"]),
                                 ("zlib, --no-locals", ["--no-locals"])):
                path = os.path.join(scratch, "snap.pyspy")
                argv = [args.tool_python, "-c", SAVE, "save", "--pid", str(target.pid), "-o", path] + extra
                timed(argv, env)   # warm the binary cache
                walls, captures, pauses, sizes, loads = [], [], [], [], []
                for _ in range(args.runs):
                    wall, _out = timed(argv, env)
                    walls.append(wall)
                    sizes.append(os.path.getsize(path))
                    sys.path.insert(0, C.REPO)
                    from snapshot import savefile
                    saved = savefile.load(path)
                    captures.append(saved.info["capture_seconds"])
                    pauses.append(saved.info.get("paused_seconds", 0.0))
                    loads.append(timed([args.tool_python, "-m", "repl.cli", "dump", "--load", path, "--locals"],
                                       env)[0])
                    explored = saved.info.get("explore", {})
                rows.append([label, "%d threads" % len(saved.snapshot.threads),
                             "%.1f KiB" % (C.median(sizes) / 1024), "%.0f ms" % (C.median(captures) * 1e3),
                             "%.0f ms" % (C.median(pauses) * 1e3),
                             "%.0f ms" % (C.median(walls) * 1e3), "%.0f ms" % (C.median(loads) * 1e3),
                             "%s values, %.1f MiB recorded" % (explored.get("objects", 0),
                                                               saved.info.get("recorded_bytes", 0) / 2 ** 20)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("# snapshot files: %s, %d runs per row (medians)" % (C.machine_line(args.python), args.runs))
    print(C.table(["variant", "target", "file size", "capture", "target paused", "save CLI wall", "dump --load wall", "content"],
                  rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
