"""The engine over corrupted memory: typed errors or visible placeholders, no hang, no carried state.

A real target (tests/targets/dump_target.py) is captured once per interpreter
through ``RecordingProcess``; hypothesis then corrupts bytes of the captured
image (runs of random bytes, zeroed or all-ones words, pointers moved by a
few bytes) and the engine walks it with locals.  Each walk must end within a
per-walk time limit with a ``Snapshot`` or a ``SnapshotError``, and the next
walk over the clean image must equal the first clean one (no corrupted
code object, name or address cached).  ``soak`` runs many more examples.

Run:  python -m pytest tests/test_fuzz_images.py -k "3.8 or 3.12 or 3.14"
"""
from __future__ import annotations

import os
import signal
import tracemalloc

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from pythons import Target as TargetProcess, target_script  # noqa: E402

WALK_SECONDS = 20
MEMORY_LIMIT = 512 << 20


class SwappableImage:
    """A Process whose bytes can be swapped for a corrupted copy between walks."""

    def __init__(self, image):
        self.clean = image
        self.current = image

    def __getattr__(self, name):
        return getattr(self.current, name)


class WalkTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise WalkTimeout()


@pytest.fixture(scope="module")
def captured(python, tmp_path_factory):
    from snapshot.process.image import RecordingProcess
    from snapshot.process.live import LiveProcess
    from snapshot.target import attach_process
    workdir = str(tmp_path_factory.mktemp("fuzz-%s" % python.id))
    truth_path = os.path.join(workdir, "truth.json")
    t = TargetProcess(python.path, target_script("dump_target.py"), [truth_path, "--workdir", workdir, "--no-busy"],
                      workdir=workdir)
    try:
        t.wait_truth(truth_path, timeout=90)
        recorder = RecordingProcess(LiveProcess(t.pid))
        live = attach_process(recorder)
        live.snapshot(locals=True)
        image = recorder.image()
        live.close()
    finally:
        t.stop()
    process = SwappableImage(image)
    target = attach_process(process)
    baseline = _comparable(target.snapshot(locals=True))
    return process, target, baseline


def _comparable(snap):
    return [(t.thread_id, t.name, [(f.function, f.filename, f.line, tuple((l.name, l.repr) for l in f.locals))
                                   for f in t.frames]) for t in snap.threads]


def _corrupt(image, edits):
    from snapshot.process.image import ImageProcess
    segments = image.segments
    pieces = list(segments)
    for seg_pick, offset_pick, kind, payload in edits:
        base, data = segments[seg_pick % len(segments)]
        if not data:
            continue
        offset = (offset_pick % max(1, len(data) // 8)) * 8
        if kind == "random":
            blob = payload
        elif kind == "zero":
            blob = b"\0" * 8
        elif kind == "ones":
            blob = b"\xff" * 8
        else:   # a pointer moved by a few bytes
            word = int.from_bytes(data[offset:offset + 8].ljust(8, b"\0"), "little")
            blob = ((word + (payload[0] % 64) - 32) & (2 ** 64 - 1)).to_bytes(8, "little")
        pieces.append((base + offset, blob[:max(0, len(data) - offset)]))
    clean = image
    return ImageProcess(pieces, pid=clean.pid, maps=clean.maps(), files=clean.mapped_files(),
                        threads=clean.threads(), executable=clean.executable(),
                        command_line=clean.command_line(), name=clean.name(),
                        in_syscall=clean.in_syscall(clean.thread_ids()))


EDITS = st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 9),
                           st.sampled_from(["random", "zero", "ones", "shift"]),
                           st.binary(min_size=1, max_size=64)), min_size=1, max_size=24)


_CAPTURED = {}


def _check(edits):
    from snapshot.errors import SnapshotError
    process, target, baseline = _CAPTURED["now"]
    process.current = _corrupt(process.clean, edits)
    old = signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    try:
        signal.alarm(WALK_SECONDS)
        try:
            target.snapshot(locals=True)
        except SnapshotError:
            pass
        except WalkTimeout:
            pytest.fail("a walk over a corrupted image took more than %ds: %r" % (WALK_SECONDS, edits))
        finally:
            signal.alarm(0)
        peak = tracemalloc.get_traced_memory()[1]
        assert peak < MEMORY_LIMIT, "a corrupted walk used %d MiB" % (peak >> 20)
    finally:
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, old)
        process.current = process.clean
    assert _comparable(target.snapshot(locals=True)) == baseline, "corrupted state carried into the next walk"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(edits=EDITS)
def _walks(edits):
    _check(edits)


def test_corrupted_images(captured):
    _CAPTURED["now"] = captured
    _walks()


@pytest.mark.soak
def test_corrupted_images_soak(captured):
    _CAPTURED["now"] = captured
    settings(max_examples=int(os.environ.get("PYSPY_REPL_SOAK_WALKS", "2000")), deadline=None,
             suppress_health_check=list(HealthCheck))(given(edits=EDITS)(_check))()
