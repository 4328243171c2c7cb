"""The on-disk cache of symbol tables and unwind rows: a second attach reads no ELF symbols and
evaluates no CFI; a corrupt or foreign entry is discarded and rebuilt.  Also prints cold, warm
(disk cache, fresh process state) and hot (same unwinder) unwind times (run with -s to see them)."""
from __future__ import annotations

import glob
import json
import os
import time

import pytest

import pythons

from snapshot.process.live import LiveProcess

import snapshot.native as native
from snapshot.native import cache, cfi, modules, symbols


def forget():
    """Drop every in-memory cache: what a new pyspy-repl process starts with."""
    modules._ROWS.clear()
    modules._SYMBOLS.clear()
    modules._DIRTY.clear()
    native._UNWINDERS.clear()


def frames_of(stacks):
    return {tid: [(f.address, f.symbol, f.nearest, f.offset) for f in frames] for tid, frames in stacks.items()}


@pytest.fixture(scope="module")
def sleeping(python, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("cache_" + python.id))
    truth_path = os.path.join(workdir, "truth.json")
    target = pythons.Target(python.path, pythons.target_script("native_sleep.py"), [truth_path], workdir=workdir)
    try:
        target.wait_for_file(truth_path, 60)
        with open(truth_path) as f:
            target.truth = json.load(f)
        pythons.wait_blocked(target.pid, [int(t) for t in target.truth["threads"].values()])
        yield target
    finally:
        target.stop()


def unwind(pid):
    process = LiveProcess(pid)
    with process.paused() as tids:
        start = time.perf_counter()
        stacks = native.native_stacks(process, tids)
        elapsed = time.perf_counter() - start
        again = time.perf_counter()
        native.native_stacks(process, tids)
        hot = time.perf_counter() - again
    return stacks, elapsed, hot


def test_second_attach_uses_the_disk_cache(python, sleeping, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    forget()
    cold, cold_s, hot_s = unwind(sleeping.pid)
    entries = glob.glob(os.path.join(cache.directory(), "*.v%d" % cache.FORMAT))
    assert any("/symbols-" in e for e in entries) and any("/rows-" in e for e in entries), entries

    forget()

    def refuse(*args, **kwargs):
        raise AssertionError("a warm attach parsed ELF symbols or CFI")
    with monkeypatch.context() as m:
        m.setattr(symbols, "_read_table", refuse)
        m.setattr(cfi.EhFrame, "row_for", refuse)
        warm, warm_s, _ = unwind(sleeping.pid)
    assert frames_of(warm) == frames_of(cold)
    count = sum(len(f) for f in cold.values())
    print("\n%s: %d threads, %d frames: cold %.1f ms, warm (disk cache) %.1f ms, hot %.2f ms "
          "(%.0f / %.0f / %.0f us per frame)" % (
              python.id, len(cold), count, cold_s * 1e3, warm_s * 1e3, hot_s * 1e3,
              cold_s * 1e6 / count, warm_s * 1e6 / count, hot_s * 1e6 / count))

    # Corrupt every entry: each is discarded and rebuilt, the answer does not change.
    for entry in entries:
        with open(entry, "wb") as f:
            f.write(b"\x00garbage" * 10)
    forget()
    again, _, _ = unwind(sleeping.pid)
    assert frames_of(again) == frames_of(cold)
    for entry in entries:
        kind, key = os.path.basename(entry).rsplit(".", 1)[0].split("-", 1)
        assert cache.load(kind, key) is not None, entry
    forget()


def test_foreign_entries_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache.store("rows", "abcd", {1: None})
    assert cache.load("rows", "abcd") == {1: None}
    path = glob.glob(os.path.join(cache.directory(), "rows-abcd.*"))[0]
    import marshal
    with open(path, "wb") as f:
        marshal.dump(("pyspy-repl-native", cache.FORMAT + 1, "abcd", {1: None}), f)
    assert cache.load("rows", "abcd") is None and not os.path.exists(path)
    with open(path, "wb") as f:
        marshal.dump(("pyspy-repl-native", cache.FORMAT, "other", {1: None}), f)
    assert cache.load("rows", "abcd") is None
    assert cache.load("rows", "") is None
