"""Every interpreter of a process is read: threads of the main interpreter and of two subinterpreters."""
from __future__ import annotations

import json
import os

import pytest

from pythons import Target, run_tool, target_script


def test_threads_of_every_interpreter(python, tmp_path):
    if tuple(int(x) for x in python.minor.split(".")) < (3, 12):
        pytest.skip("%s: subinterpreters with their own threads need 3.12+ (_xxsubinterpreters)" % python.id)
    truth_path = str(tmp_path / "truth.json")
    target = Target(python.path, target_script("subinterp_target.py"), [truth_path], workdir=str(tmp_path))
    try:
        truth = _truth_or_skip(target, truth_path, python)
        result = run_tool(["dump", "--json", "--pid", target.pid], timeout=120)
        text = run_tool(["dump", "--pid", target.pid], timeout=120).stdout.decode("utf-8")
    finally:
        target.stop()
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    threads = json.loads(result.stdout.decode("utf-8"))
    found = {(t["thread_id"], t["interpreter_id"]) for t in threads}
    assert (truth["main_thread"], 0) in found
    exact_ids = tuple(int(x) for x in python.minor.split(".")) >= (3, 13)
    for thread_id, interp_id in zip(truth["runner_threads"], truth["subinterpreters"]):
        assert (thread_id, 0) in found   # the OS thread's main-interpreter state
        subs = [t for t in threads if t["interpreter_id"] == interp_id and t["frames"]]
        assert [[f["name"] for f in t["frames"]] for t in subs] == [["<module>"]], subs
        if exact_ids:
            # 3.12's run_string runs in a thread state whose thread_id is the creator's (seen: the main
            # thread's ident), so the runner's ident is checked from 3.13 on.
            assert subs[0]["thread_id"] == thread_id, (thread_id, interp_id, sorted(found))
    for interp_id in [0] + truth["subinterpreters"]:
        assert "Interpreter %d" % interp_id in text, text


def test_subinterpreters_made_while_sampling_are_seen(python, tmp_path):
    """A sampler that has seen one interpreter (and so reads no ``next`` link while the list's head
    stays the same) sees subinterpreters made afterwards, and their threads."""
    if tuple(int(x) for x in python.minor.split(".")) < (3, 12):
        pytest.skip("%s: subinterpreters with their own threads need 3.12+ (_xxsubinterpreters)" % python.id)
    from snapshot import attach
    truth_path = str(tmp_path / "truth.json")
    start = str(tmp_path / "start")
    target = Target(python.path, target_script("subinterp_target.py"), [truth_path, start], workdir=str(tmp_path))
    try:
        attached = attach_when_up(target)
        try:
            for _ in range(20):
                before = attached.sample(blocking=False)
            assert {t.interpreter_id for t in before.threads} == {0}
            open(start, "w").close()
            truth = _truth_or_skip(target, truth_path, python)
            after = attached.sample(blocking=False)
        finally:
            attached.close()
    finally:
        target.stop()
    assert {t.interpreter_id for t in after.threads} >= {0} | set(truth["subinterpreters"]), after.threads


def attach_when_up(target):
    """Attach once the target's interpreter is running its script (retried while it starts)."""
    import time
    from snapshot import attach
    from snapshot.errors import SnapshotError
    deadline = time.monotonic() + 60
    while True:
        try:
            attached = attach(target.pid)
            attached.sample(blocking=False)
            return attached
        except (SnapshotError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _truth_or_skip(target, truth_path, python):
    """The target's truth file, or a skip when its interpreter has no subinterpreter module (exit 3)."""
    try:
        return target.wait_truth(truth_path, 60)
    except AssertionError:
        if target.proc.poll() == 3:
            pytest.skip("%s has no subinterpreter module" % python.id)
        raise
