"""Samples made from the last one (``snapshot/steadypass.py``) are the samples a whole pass makes.

Real targets on every interpreter (tests/targets/steady_target.py): a spinner thirty frames
deep whose newest frames move, a sleeper, a waiter, and with ``contend`` a second spinner
fighting for the GIL.  Every pass made from the reference is checked against a whole pass
over the same bytes (the same re-read serves both, so they must agree exactly), those whose
moved thread got a stack kept by its newest frame's key included, and those made from a
reference kept aside (the spinner's loop between its calls; idleness asked or not), sampling
with and without idleness, with a paused sample now and then in between.  On 3.11+ most
passes of the calm target must be made from the reference; before 3.11 none are.
"""
from __future__ import annotations

import subprocess

import pytest

import snapshot
from snapshot import steadypass
from pythons import end_stdin_target, target_script

SAMPLES = 300


def _shape(thread):
    return (thread.thread_id, thread.native_id, thread.name, thread.holds_gil, thread.is_idle, thread.status,
            [(f.function, f.filename, f.line, f.is_entry) for f in thread.frames])


@pytest.mark.parametrize("mode", ["calm", "contend"])
def test_passes_from_the_last_one_equal_whole_passes(python, mode, monkeypatch):
    checked = []
    wrong = []
    original = steadypass.SteadyPasses.take

    def take(self, states, calls):
        threads = original(self, states, calls)
        if threads is not None:
            # the same pass, walked whole: served by the same re-read, so it sees the same bytes
            target = self.target
            copied = target._copy_stacks(False, False, follow=False)
            whole = target._build_threads(copied, False, 0, 0, False, dict(states),
                                          dict(calls) if calls else calls)
            got, want = [_shape(t) for t in threads], [_shape(t) for t in whole]
            checked.append(True)
            if got != want:
                wrong.append((got, want))
        return threads

    monkeypatch.setattr(steadypass.SteadyPasses, "take", take)
    args = ["contend"] if mode == "contend" else []
    proc = subprocess.Popen([python.path, target_script("steady_target.py")] + args,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    target = None
    try:
        assert proc.stdout.readline().strip() == "ready"
        target = snapshot.attach(proc.pid)
        for i in range(SAMPLES):
            if i % 50 == 49:
                target.sample(blocking=True)
            snap = target.sample(blocking=False, idleness=i % 3 != 0)
            assert {"spinner", "sleeper", "waiter"} <= {t.name for t in snap.threads}, [t.name for t in snap.threads]
            spinner = [t for t in snap.threads if t.name == "spinner"][0]
            names = [f.function.rsplit(".", 1)[-1] for f in spinner.frames]
            assert names.count("descend") == 31 and "leaf_loop" in names, names
        assert not wrong, "%d of %d passes made from the last one differ from whole passes, e.g.\n%s\n%s" % (
            len(wrong), len(checked), wrong[0][0], wrong[0][1])
        taken = target._steady.taken if target._steady is not None else 0
        if python.version_tuple >= (3, 11):
            assert taken == len(checked)
            if mode == "calm":
                # a loose bound: how often the sleeper wakes between passes depends on the machine's load
                assert taken >= SAMPLES // 10, "only %d of %d passes were made from the last one" % (taken, SAMPLES)
                # the spinner's newest frame comes back to the same instructions: stacks kept by key
                assert target._steady.by_key >= 1, "no thread was given a stack kept by its newest frame's key"
                # every third pass asks no run states: it matches a reference kept aside, not the last one
                assert target._steady.from_others >= 1, "no pass started from a reference kept aside"
            else:
                assert taken >= 1
        else:
            assert taken == 0, "frame-object walks (3.10 and older) always walk whole"
    finally:
        end_stdin_target(proc, target, "\n")
