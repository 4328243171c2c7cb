"""The data model's saved form: versioned, lossless, readable from older forms."""
from __future__ import annotations

import json

import pytest

from snapshot.errors import SnapshotFormatError
from snapshot.model import FORMAT_VERSION, Frame, Local, Snapshot, ThreadStack


def _snapshot() -> Snapshot:
    python = Frame("work", "/srv/app.py", 12, (Local("x", "1", 0x7f0010, True), Local("n", "3", 0, False)),
                   is_entry=True, globals_addr=0x7f0200)
    native = Frame("PyObject_Vectorcall", "", 0, is_native=True, module="/usr/lib/libpython3.12.so.1.0",
                   address=0x7f12345678)
    plain = Frame("<module>", "/srv/app.py", 40, None, is_entry=True)
    threads = (ThreadStack(0x7f01, 4242, "MainThread", True, False, (python, native, plain), interpreter_id=0,
                           status="waiting for the GIL"),
               ThreadStack(0x7f02, None, None, False, True, (), interpreter_id=3,
                           native_error="cannot merge: 2 eval-loop native frames for 1 Python entry frames"))
    return Snapshot(4242, "3.12.1", "/usr/bin/python3.12", 1_700_000_000_000_000_000, threads, ("python", "app.py"))


def test_round_trip_is_lossless():
    snap = _snapshot()
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["format_version"] == FORMAT_VERSION
    back = Snapshot.from_dict(data)
    assert back == snap
    assert back.threads[0].frames[1].address == 0x7f12345678
    assert back.threads[0].frames[1].module.endswith(".so.1.0")
    assert back.threads[1].interpreter_id == 3
    assert back.threads[0].status == "waiting for the GIL" and back.threads[1].status is None
    assert back.threads[1].native_error.startswith("cannot merge")
    assert back.to_dict() == snap.to_dict()


def test_py_spy_field_names_are_kept():
    thread = _snapshot().threads_json()[0]
    assert {"pid", "thread_id", "thread_name", "os_thread_id", "active", "owns_gil", "frames"} <= set(thread)
    frame = thread["frames"][0]
    assert {"name", "filename", "module", "short_filename", "line", "locals", "is_entry"} <= set(frame)
    assert frame["is_entry"] is True
    assert frame["locals"][0] == {"name": "x", "addr": 0x7f0010, "arg": True, "repr": "1"}


def test_unversioned_form_still_opens():
    data = _snapshot().to_dict()
    del data["format_version"]
    for thread in data["threads"]:
        del thread["interpreter_id"]
        for frame in thread["frames"]:
            frame.pop("is_entry")
    back = Snapshot.from_dict(data)
    assert back.threads[1].interpreter_id == 0
    assert not any(f.is_entry for t in back.threads for f in t.frames)


def test_newer_form_is_a_typed_error():
    data = _snapshot().to_dict()
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(SnapshotFormatError):
        Snapshot.from_dict(data)


def test_without_locals_keeps_the_rest():
    frame = _snapshot().threads[0].frames[0].without_locals()
    assert frame.locals is None and frame.is_entry and frame.line == 12
