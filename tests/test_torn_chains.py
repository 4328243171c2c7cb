"""A frame chain read while it changed is read again, not reported; paused, the same bytes are the truth.

Without pausing, a thread's current frame and the frames it links to are read a few
microseconds apart.  A generator that yields in between has already unlinked its frame
(``previous`` zeroed), so the chain ends at it: a lone generator frame, or a loop through
reused frame memory.  3.12+ chains always end at an eval loop's entry shim, so one that ends
at a Python frame was torn; a loop is torn on any version.  The reader then raises
``CorruptDataError`` and the sample is taken again; paused, the same bytes are what the
thread holds, and they are shown.

The target (tests/targets/generator_target.py) is a real process whose thread waits inside
a generator; it is captured once, paused, and the tear is made in a copy of its memory
(the generator frame's ``previous`` zeroed, or pointing at itself).
"""
from __future__ import annotations

import subprocess

import pytest

from pythons import end_stdin_target, target_script


def _captured(python):
    from snapshot.process.image import RecordingProcess
    from snapshot.process.live import LiveProcess
    from snapshot.target import attach_process
    proc = subprocess.Popen([python.path, target_script("generator_target.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    live = None
    try:
        assert proc.stdout.readline().strip() == "ready"
        recorder = RecordingProcess(LiveProcess(proc.pid))
        live = attach_process(recorder)
        driver = [t for t in live.sample(blocking=True).threads if t.name == "driver"][0]
        assert [f.function for f in driver.frames][:2] == ["slow", "drive"]
        return recorder.image()
    finally:
        end_stdin_target(proc, live, "\n")


def _with_previous(image, value_of):
    """The image with the driver's newest frame's ``previous`` set to ``value_of(frame address)``,
    and that frame's address."""
    from snapshot.process.image import ImageProcess
    from snapshot.target import attach_process
    target = attach_process(image)
    copied = target._copy_stacks(False, False, follow=True)
    raws = target.walker.decode_threads([c for entry in copied for c in entry[4]], False)
    address = [r.frames[0].frame_addr for r in raws if r.frames and r.frames[0].code.name == "slow"][0]
    word = (address + target.walker.if_previous, value_of(address).to_bytes(8, "little"))
    torn = ImageProcess(list(image.segments) + [word], pid=image.pid, maps=image.maps(),
                        files=image.mapped_files(), threads=image.threads(), executable=image.executable(),
                        command_line=image.command_line(), name=image.name(),
                        in_syscall=image.in_syscall(image.thread_ids()))
    return attach_process(torn)


def _driver(snap):
    return [t for t in snap.threads if t.name == "driver"][0]


def test_a_torn_chain_is_read_again_and_a_paused_one_shown(python):
    from snapshot.errors import CorruptDataError
    if python.version_tuple < (3, 11):
        pytest.skip("%s walks frame objects (before 3.11), which these checks are not part of" % python.id)
    image = _captured(python)

    looped = _with_previous(image, lambda address: address)
    with pytest.raises(CorruptDataError, match="loops"):
        looped.sample(blocking=False)
    paused = _driver(looped.sample(blocking=True))
    assert [f.function for f in paused.frames] == ["slow"]  # the walk stops where the chain loops

    unlinked = _with_previous(image, lambda address: 0)
    if python.version_tuple >= (3, 12):
        with pytest.raises(CorruptDataError, match="ends at a Python frame"):
            unlinked.sample(blocking=False)
    else:  # 3.11 has no entry shims: a chain may end at any frame
        assert [f.function for f in _driver(unlinked.sample(blocking=False)).frames] == ["slow"]
    assert [f.function for f in _driver(unlinked.sample(blocking=True)).frames] == ["slow"]

    # the clean image after the torn ones: nothing carried over
    from snapshot.target import attach_process
    clean = attach_process(image)
    assert [f.function for f in _driver(clean.sample(blocking=False)).frames][:2] == ["slow", "drive"]
