"""asyncio tasks read from outside, on every interpreter, against the target's own truth.

The target (tests/targets/asyncio_target.py) writes ``asyncio.all_tasks()``
with each task's coroutine chain (``get_coro()`` then ``cr_await`` /
``gi_yieldfrom`` / ``ag_await``) and the await edges its structure
guarantees (gather, nested create_task, TaskGroup).  ``dump --async --json``
must report every task with the same chain (function, file, line) and those
awaited-by edges (recorded on 3.14+, inferred before).

3.6 and 3.7 tasks have no name: we name them after their coroutine as CPython's
task repr does, ``coro=<QUALNAME()>``; 2.7 has no asyncio (skipped, saying so).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pythons import Target, run_tool, target_script

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


@pytest.fixture(autouse=True)
def _has_asyncio(request):
    if "python" in request.fixturenames:
        python = request.getfixturevalue("python")
        if python.minor.startswith("2."):
            pytest.skip("%s has no asyncio (it came in 3.4)" % python.id)


def _expected_name(task):
    """The truth's name, or for an unnamed (3.6/3.7) task what we print: ``coro=<QUALNAME()>``."""
    return task["name"] if task["name"] is not None else "coro=<%s()>" % task["coro_qualname"]


def _start(python, tmp_path, *extra):
    truth_path = str(tmp_path / "truth.json")
    target = Target(python.path, target_script("asyncio_target.py"), [truth_path, *extra], workdir=str(tmp_path))
    truth = target.wait_truth(truth_path, 60)
    return target, truth


def _dump(pid):
    result = run_tool(["dump", "--async", "--json", "--pid", pid], timeout=120)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return json.loads(result.stdout.decode("utf-8"))


def _compare_chain(truth_task, got_task, problems):
    got = list(reversed(got_task["frames"]))
    want = truth_task["chain"]
    shape = [(f["name"], os.path.basename(f["filename"]), f["line"]) for f in want]
    have = [(f["name"].rsplit(".", 1)[-1], os.path.basename(f["filename"]), f["line"]) for f in got]
    if shape != have:
        problems.append("task %s: chain %s != truth %s" % (truth_task["name"], have, shape))
    for w, g in zip(want, got):
        if w["filename"] != g["filename"]:
            problems.append("task %s: file %s != %s" % (truth_task["name"], g["filename"], w["filename"]))


def test_tasks_match_truth(python, tmp_path):
    target, truth = _start(python, tmp_path)
    try:
        dump = _dump(target.pid)
    finally:
        target.stop()
    got = {t["task_id"]: t for t in dump["tasks"]}
    problems = []
    for task in truth["tasks"]:
        mine = got.get(task["task_id"])
        if mine is None:
            problems.append("task %s (%#x) missing" % (task["name"], task["task_id"]))
            continue
        if mine["name"] != _expected_name(task):
            problems.append("task %#x: name %r != %r" % (task["task_id"], mine["name"], _expected_name(task)))
        if mine["state"] not in ("pending",):
            problems.append("task %s: state %s" % (task["name"], mine["state"]))
        if mine["thread_id"] != truth["thread_id"]:
            problems.append("task %s: thread %s != %s" % (task["name"], mine["thread_id"], truth["thread_id"]))
        _compare_chain(task, mine, problems)
    extra = set(got) - {t["task_id"] for t in truth["tasks"]}
    if extra:
        problems.append("tasks not in truth: %s" % sorted(got[i]["name"] for i in extra))
    by_name = {t["role"]: t["task_id"] for t in truth["tasks"] if t["role"]}
    for parent, child in truth["edges"]:
        child_task = got.get(by_name[child], {})
        if by_name[parent] not in child_task.get("awaited_by", ()):
            problems.append("edge %s -> %s missing (awaited_by of %s: %s)" % (
                parent, child, child, child_task.get("awaited_by")))
        if by_name[child] not in got.get(by_name[parent], {}).get("awaits", ()):
            problems.append("edge %s -> %s missing from awaits" % (parent, child))
    expect_recorded = tuple(truth["version"]) >= (3, 14)
    if any(t["inferred"] == expect_recorded for t in dump["tasks"]):
        problems.append("inferred flag wrong for %s" % python.id)
    assert not problems, "\n".join(problems)


def test_dump_async_text_tree(python, tmp_path):
    target, truth = _start(python, tmp_path)
    try:
        result = run_tool(["dump", "--async", "--pid", target.pid], timeout=120)
    finally:
        target.stop()
    text = result.stdout.decode("utf-8")
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert "asyncio tasks: %d" % len(truth["tasks"]) in text
    named = tuple(truth["version"]) >= (3, 8)
    assert ("(T) naïve-задача-名前" if named else "(T) coro=<worker()>") in text, text
    # gather children sit under the gather parent's coroutine frame
    parent, child = ("gather-parent", "gather-child-0") if named else ("coro=<gather_parent()>", "coro=<worker()>")
    parent_line = next(i for i, l in enumerate(text.splitlines()) if "(T) " + parent in l)
    assert any("(T) " + child in l for l in text.splitlines()[parent_line:parent_line + 12]), text


def test_thousand_tasks_in_process(python, tmp_path):
    target, truth = _start(python, tmp_path, "--many", "1000")
    try:
        from snapshot.target import attach
        with attach(target.pid) as tgt:
            tgt.snapshot(tasks=True)                      # warm: code objects, debug table
            start = time.perf_counter()
            snap = tgt.snapshot(tasks=True)
            elapsed = time.perf_counter() - start
    finally:
        target.stop()
    assert len(snap.tasks) == len(truth["tasks"]) == 1001
    deep = [t for t in snap.tasks if t.name.startswith("many-") or t.name == "coro=<worker()>"]  # 3.6/3.7: unnamed
    assert len(deep) == 1000 and all(len(t.frames) == 4 for t in deep)
    print("\n%s: snapshot with 1000 tasks in %.3f s" % (python.id, elapsed))
    # recorded, not asserted tightly (shared 2-core machine): only a gross regression fails
    assert elapsed < 10


_LAYOUT_CHECK = r"""
import asyncio, ctypes, json, sys, weakref
async def inner(f):
    await f
async def main():
    loop = asyncio.get_running_loop() if hasattr(asyncio, "get_running_loop") else asyncio.get_event_loop()
    f = loop.create_future()
    t = asyncio.ensure_future(inner(f))
    t.set_name("probe") if hasattr(t, "set_name") else None
    await asyncio.sleep(0)
    ref = weakref.ref(t)
    word = lambda obj, off: ctypes.c_uint64.from_address(id(obj) + off).value
    print(json.dumps({"task_size": type(t).__basicsize__, "future_size": type(f).__basicsize__,
                      "weakref_size": weakref.ref.__basicsize__, "ids": {"loop": id(loop),
                      "coro": id(t.get_coro() if hasattr(t, "get_coro") else t._coro),
                      "name": id(t.get_name()) if hasattr(t, "get_name") else 0, "waiter": id(f), "task": id(t)},
                      "ref_addr": id(ref)}))
    sys.stdout.flush()
    data = json.loads(sys.stdin.readline())
    print(json.dumps({k: word(t, v) for k, v in data["task"].items()} ))
    print(json.dumps({"wr_object": word(ref, data["wr_object"]),
                      "state": ctypes.c_int.from_address(id(t) + data["state"]).value}))
    f.set_result(1)
asyncio.run(main()) if hasattr(asyncio, "run") else asyncio.get_event_loop().run_until_complete(main())
"""


def test_task_layout_in_process(python):
    """The declared TaskObj/FutureObj/weakref offsets hold the right values in a live task."""
    from layouts import get_layout
    layout = get_layout(tuple(int(x) for x in python.minor.split(".")))
    proc = subprocess.Popen([python.path, "-c", _LAYOUT_CHECK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    first = json.loads(proc.stdout.readline())
    task = layout.TaskObj
    fields = {"loop": task.task_loop, "coro": task.task_coro, "waiter": task.task_fut_waiter}
    if task.get("task_name") is not None:       # 3.8+: 3.6/3.7 tasks have no name
        fields["name"] = task.task_name
    proc.stdin.write(json.dumps({"task": fields,
                                 "wr_object": layout.PyWeakReference.wr_object, "state": task.task_state}) + "\n")
    proc.stdin.flush()
    words = json.loads(proc.stdout.readline())
    last = json.loads(proc.stdout.readline())
    proc.wait(30)
    assert first["task_size"] == task.size
    assert first["future_size"] == layout.FutureObj.size
    assert first["weakref_size"] == layout.PyWeakReference.size
    assert bool(first["ids"]["name"]) == ("name" in fields)
    for key in ("loop", "coro", "waiter") + (("name",) if first["ids"]["name"] else ()):
        assert words[key] == first["ids"][key], key
    assert last["wr_object"] == first["ids"]["task"]
    assert last["state"] == 0  # pending


def test_record_async_shows_tasks(python, tmp_path):
    """``record --async``: the running task's name sits between the loop's frames and its coroutines."""
    named = tuple(int(x) for x in python.minor.split(".")) >= (3, 8)
    alpha, beta = ("cpu-alpha", "cpu-beta") if named else ("coro=<outer_alpha()>", "coro=<outer_beta()>")
    ready = str(tmp_path / "ready")
    target = Target(python.path, target_script("async_cpu_target.py"), [ready], workdir=str(tmp_path))
    out = str(tmp_path / "profile.txt")
    try:
        target.wait_for_file(ready, 60)
        result = run_tool(["record", "--async", "-f", "raw", "-o", out, "-r", "50", "-d", "3",
                           "--pid", target.pid], timeout=120)
    finally:
        target.stop()
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    stacks = [line.rsplit(" ", 1)[0].split(";") for line in open(out, encoding="utf-8") if line.strip()]
    seen = {}
    for stack in stacks:
        for index, label in enumerate(stack):
            if label.startswith("<task "):
                seen.setdefault(label, set()).add(stack[index + 1].split(" ")[0] if index + 1 < len(stack) else "")
    # Names: set_name on 3.8+ (3.6/3.7: the coroutine's); the task frame is right outside the
    # task's own coroutine.
    assert seen.get("<task %s>" % alpha) == {"outer_alpha"}, seen
    assert seen.get("<task %s>" % beta) == {"outer_beta"}, seen
    for stack in stacks:
        if any(label.startswith("spin ") for label in stack):
            assert any(label.startswith("<task ") for label in stack), stack


def test_record_async_follows_subprocesses(python, tmp_path):
    """``record --async --subprocesses``: a followed child's tasks are named as the root's would be."""
    if tuple(int(x) for x in python.minor.split(".")) < (3, 8):
        pytest.skip("asyncio task names need 3.8")
    ready = str(tmp_path / "ready")
    out = str(tmp_path / "profile.txt")
    parent = "import subprocess, sys; subprocess.call([sys.executable] + sys.argv[1:])"
    result = run_tool(["record", "--async", "--subprocesses", "-f", "raw", "-o", out, "-r", "50", "-d", "8",
                       "--", python.path, "-c", parent, target_script("async_cpu_target.py"), ready],
                      timeout=180)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    stacks = [line.rsplit(" ", 1)[0].split(";") for line in open(out, encoding="utf-8") if line.strip()]
    spinning = [s for s in stacks if any(label.startswith("spin ") for label in s)]
    assert spinning, "the child was never sampled running its tasks: %s" % stacks[:5]
    for stack in spinning:
        assert stack[0].startswith("process "), stack
        assert any(label in ("<task cpu-alpha>", "<task cpu-beta>") for label in stack), " ; ".join(stack)
