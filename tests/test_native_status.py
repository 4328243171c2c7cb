"""Thread status from native frames on real processes: two threads contending for the GIL."""
from __future__ import annotations

import json

import pythons

from snapshot.native import native_stacks
from snapshot.native.status import COLLECTING_GARBAGE, UNKNOWN, WAITING_FOR_GIL, native_status
from snapshot.process.live import LiveProcess


def test_gil_contention(python, tmp_path):
    truth_path = str(tmp_path / "truth.json")
    target = pythons.Target(python.path, pythons.target_script("native_gil.py"), [truth_path],
                            workdir=str(tmp_path))
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            tids = [int(t) for t in json.load(f)["threads"].values()]
        process = LiveProcess(target.pid)
        seen = []
        # The spinners swap the GIL every 5 ms (3.x); 2.7's lock has no forced switching (the
        # releasing thread mostly re-takes it at once), so runs where 40 pauses never catch the
        # waiter happen there: a larger bound (the loop stops at the first sighting).
        for _ in range(300):
            with process.paused():
                stacks = native_stacks(process, tids)
            statuses = sorted(str(native_status(stacks[t])) for t in tids)
            seen.append(statuses)
            if UNKNOWN in statuses and python.flavour == "pyenv":
                seen.append([f.describe() for t in tids for f in stacks[t][:6]])
            if WAITING_FOR_GIL in statuses:
                break
    finally:
        target.stop()
    flat = {s for statuses in seen for s in statuses}
    assert COLLECTING_GARBAGE not in flat
    if python.flavour == "pyenv":
        # full symbol tables: one thread is always seen waiting, never "unknown"
        assert WAITING_FOR_GIL in flat, seen
        assert UNKNOWN not in flat, seen
    else:
        # stripped builds: take_gil is static, but its exported callers (PyEval_RestoreThread,
        # _PyThreadState_Attach) or nothing at all: "waiting" or "unknown", never a wrong word
        assert flat <= {WAITING_FOR_GIL, UNKNOWN, "None"}, seen
