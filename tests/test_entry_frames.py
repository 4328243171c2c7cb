"""Frame.is_entry as CPython marks it, ThreadStack.interpreter_id, and a real snapshot's round trip.

tests/targets/entry_target.py blocks inside a stack that goes through two C
calls back into Python and writes the expected (function, is_entry) list from
its own view of that stack.  Both the engine's snapshot and ``dump --json``
must agree with it on every interpreter.
"""
from __future__ import annotations

import json
import os

import snapshot
from snapshot.model import Snapshot
from pythons import Target, run_tool, target_script


def _start(python, tmp_path):
    truth_path = str(tmp_path / "truth.json")
    target = Target(python.path, target_script("entry_target.py"), [truth_path], workdir=str(tmp_path))
    truth = target.wait_truth(truth_path)
    return target, truth


def test_is_entry_matches_cpython(python, tmp_path):
    target, truth = _start(python, tmp_path)
    try:
        expected = [tuple(pair) for pair in truth["frames"]]
        with snapshot.attach(target.pid) as attached:
            for with_locals in (False, True):
                snap = attached.snapshot(locals=with_locals)
                main = [t for t in snap.threads if t.frames and t.frames[-1].function == "<module>"]
                assert len(main) == 1, snap.threads
                got = [(f.function.rsplit(".", 1)[-1], f.is_entry) for f in main[0].frames]
                assert got == expected, (python.id, with_locals)
                assert main[0].interpreter_id == 0
                assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
            # samples after the first find their frames remembered by their words: the same marks
            for _ in range(4):
                for blocking in (True, False):
                    sampled = attached.sample(blocking=blocking)
                    assert [(f.function.rsplit(".", 1)[-1], f.is_entry)
                            for f in sampled.threads[0].frames] == expected, (python.id, blocking)
        result = run_tool(["dump", "--pid", target.pid, "--json"])
        assert result.returncode == 0, result.stderr.decode()
        threads = json.loads(result.stdout)
        frames = [t for t in threads if t["frames"] and t["frames"][-1]["name"] == "<module>"][0]["frames"]
        assert [(f["name"], f["is_entry"]) for f in frames] == expected
        assert threads[0]["interpreter_id"] == 0
    finally:
        target.stop()
        if os.path.exists(target.log_path):
            os.remove(target.log_path)
