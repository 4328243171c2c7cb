"""Thread status on every interpreter: GC in progress, the exception a thread handles, the status word.

The target (tests/targets/status_target.py) parks one thread inside
``gc.collect()`` of a large cyclic graph (in a finalizer that blocks) and one
inside an ``except`` block, and writes what ``sys.exc_info()`` says.
"""
from __future__ import annotations

import json

from pythons import Target, run_tool, target_script


def _start(python, tmp_path):
    truth_path = str(tmp_path / "truth.json")
    target = Target(python.path, target_script("status_target.py"), [truth_path], workdir=str(tmp_path))
    return target, target.wait_truth(truth_path, 120)


def test_gc_and_exception_in_json_and_text(python, tmp_path):
    target, truth = _start(python, tmp_path)
    try:
        result = run_tool(["dump", "--json", "--pid", target.pid], timeout=120)
        text = run_tool(["dump", "--pid", target.pid], timeout=120)
    finally:
        target.stop()
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    threads = {t["thread_id"]: t for t in json.loads(result.stdout.decode("utf-8"))}
    roles = {t["role"]: t for t in truth["threads"]}
    collector = threads[roles["collector"]["thread_id"]]
    handler = threads[roles["handler"]["thread_id"]]
    main = threads[roles["main"]["thread_id"]]
    # GC state is the interpreter's: every thread of it says so.
    assert collector["gc_collecting"] and handler["gc_collecting"] and main["gc_collecting"]
    names = [f["name"].rsplit(".", 1)[-1] for f in collector["frames"]]
    finalizer = truth["finalizer"]   # __del__; 2.7: a weakref callback (it calls no __del__ of a cycle)
    assert finalizer in names and names.index(finalizer) < names.index("collector"), names
    want = roles["handler"]["exception"]
    assert handler["exception"] is not None, handler
    assert (handler["exception"]["type"], handler["exception"]["message"]) == (want["type"], want["message"])
    # The others handle none (None in the truth), except on 2.7, where the main thread still shows
    # the AttributeError its module body caught (2.7 keeps a handled exception until the frame ends).
    for role, thread in (("main", main), ("collector", collector)):
        got = thread["exception"] and {"type": thread["exception"]["type"], "message": thread["exception"]["message"]}
        assert got == roles[role]["exception"], (role, thread["exception"], roles[role]["exception"])
    if python.version_tuple >= (3, 0):
        assert main["exception"] is None and collector["exception"] is None
    for t in threads.values():
        assert t["status"] in ("holds_gil", "waiting_for_gil", "running", "idle")
        assert t["status"] == "idle" or t["owns_gil"] or t["active"], t
    out = text.stdout.decode("utf-8")
    assert text.returncode == 0, text.stderr.decode("utf-8", "replace")
    assert "[gc collecting; handling ValueError: boom: na\u00efve 42]" in out, out
    assert out.count("gc collecting") == len(threads), out


def test_status_round_trip():
    from snapshot.model import HandledException, Snapshot, ThreadStack
    thread = ThreadStack(1, 2, "t", False, True, (), 0, status="waiting_for_gil", gc_collecting=True,
                         exception=HandledException("KeyError", "k", 0x10))
    snap = Snapshot(1, "3.12.1", "/x", 0, (thread,))
    back = Snapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert back == snap
    old = dict(snap.to_dict())
    for t in old["threads"]:
        del t["status"], t["gc_collecting"], t["exception"]
    assert Snapshot.from_dict(old).threads[0].status is None
