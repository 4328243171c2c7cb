"""A long-lived Target must not name frames after a freed code object whose address was reused."""
from __future__ import annotations

import subprocess

import snapshot
from pythons import target_script

STEPS = 40


def test_reused_code_addresses_are_noticed(python):
    proc = subprocess.Popen([python.path, target_script("code_reuse_target.py"), str(STEPS)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        target = None
        for step in range(STEPS):
            assert proc.stdout.readline().strip() == str(step)
            if target is None:
                target = snapshot.attach(proc.pid)
            for blocking in (True, False):
                snap = target.sample(blocking=blocking)
                frames = snap.threads[0].frames
                names = [f.function for f in frames]
                assert "f_%d" % step in names, (step, names)
                frame = frames[names.index("f_%d" % step)]
                assert (frame.filename, frame.line) == ("<generated-%d>" % (step % 3), step + 2), frame
            proc.stdin.write("\n")
            proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"
    finally:
        proc.kill()
        proc.wait()
        if target is not None:
            target.close()
