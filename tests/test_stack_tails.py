"""Remembered tails (``snapshot/walk/tails.py``) give the stack the target really has.

tests/targets/tails_target.py changes its stack only below the innermost
frames, at the same addresses (another caller's code, a caller's local, a
deeper chain, a C call between): every sample, blocking or not, must equal
the truth the target prints, with the same entry marks as a walk that uses
no remembered frames (a walk with locals), and on 3.11+ steady samples must
be served by tails, or by the last sample's very thread when none of the bytes
it was decoded from changed (``Walker._steady_thread``).
"""
from __future__ import annotations

import subprocess

import snapshot
from snapshot.walk import tails as tails_module
from snapshot.walk import walker as walker_module
from pythons import end_stdin_target, target_script

STEPS = 14
SAMPLES = 4


def _names(frames):
    return [f.function.rsplit(".", 1)[-1] for f in frames]


def test_tails_follow_changes_below_the_innermost_frame(python, monkeypatch):
    held = []
    original = tails_module.Tail.holds

    inside = []  # holds() ends in holds_outside(): that call is not counted on its own

    def holds(self, chunks, read):
        inside.append(True)
        try:
            result = original(self, chunks, read)
        finally:
            inside.pop()
        held.append(result)
        return result

    monkeypatch.setattr(tails_module.Tail, "holds", holds)
    original_outside = tails_module.Tail.holds_outside

    def holds_outside(self, read):
        # a thread whose copies did not change at all checks only its tail's reads outside them
        result = original_outside(self, read)
        if not inside:
            held.append(result)
        return result

    monkeypatch.setattr(tails_module.Tail, "holds_outside", holds_outside)
    original_steady = walker_module.Walker._steady_thread
    unwalked = []

    def steady_thread(self, copy, last_pass):
        last = last_pass.get(copy.tstate_addr)
        thread = original_steady(self, copy, last_pass)
        if last is not None and thread is last[3] and last[3].tail is None:
            unwalked.append(True)  # served without a walk, and without a tail to check
        return thread

    monkeypatch.setattr(walker_module.Walker, "_steady_thread", steady_thread)
    reused = 0  # samples that handed back the last sample's very ThreadStack (nothing changed)
    proc = subprocess.Popen([python.path, target_script("tails_target.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    target = None
    try:
        for step in range(STEPS):
            truth = proc.stdout.readline().split()
            assert truth and truth[0] == "wait", truth
            if target is None:
                target = snapshot.attach(proc.pid)
            exact = target.snapshot(locals=True).threads[0].frames
            assert _names(exact) == truth, (python.id, step)
            marks = [f.is_entry for f in exact]
            for _ in range(SAMPLES):
                for blocking in (True, False):
                    frames = target.sample(blocking=blocking).threads[0].frames
                    assert _names(frames) == truth, (python.id, step, blocking)
                    assert [f.is_entry for f in frames] == marks, (python.id, step, blocking)
            for blocking in (True, False):  # samples in a row of one kind, as a sampler takes them
                last = None
                for _ in range(SAMPLES):
                    thread = target.sample(blocking=blocking).threads[0]
                    assert _names(thread.frames) == truth, (python.id, step, blocking)
                    reused += thread is last
                    last = thread
            proc.stdin.write("\n")
            proc.stdin.flush()
        if python.version_tuple >= (3, 11):
            # the same stack sampled again is served by its tail (or unchanged); a changed one is walked again
            assert held.count(True) + len(unwalked) >= STEPS * (2 * SAMPLES - 2), held
            assert held.count(False) >= 1, held
            # the thread waits on stdin between steps: its bytes stay the same across samples
            assert reused >= STEPS * 2 * (SAMPLES - 2), reused
        else:
            assert not held, "frame-object walks (3.10 and older) keep no tails"
    finally:
        end_stdin_target(proc, target)
