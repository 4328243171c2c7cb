"""Batched reads of a live process: a pass re-reads the last pass's ranges in one call, and a
range that faults costs one more call, not one per range after it.

The target is a real sleeping Python process; its readable mappings come from its
``/proc/PID/maps``, and every pass's bytes must equal what a plain read returns.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from snapshot.process.memory import ProcessMemory


@pytest.fixture(scope="module")
def sleeper():
    # asleep once it has said so: its memory then stays as it is
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; print('ready', flush=True); time.sleep(120)"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.2)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _readable(pid, count):
    """``count`` (address, size) ranges inside writable private mappings of ``pid``."""
    ranges = []
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            span, perms = line.split()[:2]
            # written private pages (heap, data, anonymous): a file mapping may end past its file
            if perms != "rw-p" or "[vvar]" in line or "[vsyscall]" in line:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            for offset in range(0, min(end - start, 4096 * 4), 4096):
                ranges.append((start + offset, 64 + 8 * len(ranges)))
            if len(ranges) >= count:
                return ranges[:count]
    return ranges


def test_second_pass_is_one_call_with_the_same_bytes(sleeper):
    memory = ProcessMemory(sleeper)
    ranges = _readable(sleeper, 12)
    plain = [memory.read(a, s) for a, s in ranges]
    memory.begin_pass()
    first = memory.read_many(ranges[:6]) + [memory.read(a, s) for a, s in ranges[6:]]
    memory.end_pass()
    assert first == plain
    calls = memory.read_calls
    memory.begin_pass()
    again = [memory.read(a, s) for a, s in ranges[:6]] + memory.read_many(ranges[6:])
    smaller = memory.read(ranges[0][0], 8)  # a shorter read at a planned address is served too
    memory.end_pass()
    assert again == plain and smaller == plain[0][:8]
    assert memory.read_calls - calls == 1, "the second pass should cost the one re-read"


def test_a_range_asked_for_later_is_read_and_planned(sleeper):
    memory = ProcessMemory(sleeper)
    ranges = _readable(sleeper, 4)
    memory.begin_pass()
    memory.read_many(ranges[:2])
    memory.end_pass()
    memory.begin_pass()
    memory.read_many(ranges)  # two served, two read
    memory.end_pass()
    plain = [memory.read(a, s) for a, s in ranges]
    calls = memory.read_calls
    memory.begin_pass()
    assert memory.read_many(ranges) == plain
    memory.end_pass()
    assert memory.read_calls - calls == 1  # all four planned: the re-read only


def test_a_faulting_range_costs_one_more_call(sleeper):
    memory = ProcessMemory(sleeper)
    good = _readable(sleeper, 8)
    unmapped = (0x1000, 64)  # the first pages are never mapped
    requests = good[:1] + [unmapped] + good[1:]
    calls = memory.read_calls
    got = memory.read_many(requests)
    assert got[1] is None and all(got[i] is not None for i in range(len(requests)) if i != 1)
    # one batch up to the fault, the faulting range alone, one batch for the rest
    assert memory.read_calls - calls == 3


def test_reads_outside_a_pass_are_not_served(sleeper):
    memory = ProcessMemory(sleeper)
    ranges = _readable(sleeper, 2)
    memory.begin_pass()
    memory.read_many(ranges)
    memory.end_pass()
    calls = memory.read_calls
    memory.read_many(ranges)
    assert memory.read_calls - calls == 1


def test_a_blocking_sample_reads_its_pass_inside_the_pause(sleeper):
    """The pass's one re-read is the pause's view: it must come after the stop and end before
    the detach (a re-read made before the stop would serve memory from a running target)."""
    import snapshot
    from contextlib import contextmanager

    events = []
    with snapshot.attach(sleeper) as target:
        process = target.process
        inner, begin, end = process.paused, process.begin_pass, process.end_pass

        @contextmanager
        def paused():
            with inner() as stopped:
                events.append("stopped")
                yield stopped
                events.append("detaching")

        process.paused = paused
        process.begin_pass = lambda: (events.append("begin"), begin())[1]
        process.end_pass = lambda: (events.append("end"), end())[1]
        for blocking in (True, False):
            del events[:]
            target.sample(blocking=blocking)
            expected = ["stopped", "begin", "end", "detaching"] if blocking else ["begin", "end"]
            assert events == expected, (blocking, events)


def test_a_steady_plan_keeps_its_prepared_read_and_a_fault_falls_back(sleeper):
    memory = ProcessMemory(sleeper)
    good = _readable(sleeper, 6)
    for _ in range(3):
        memory.begin_pass()
        for address, size in good:
            memory.read(address, size)
        memory.end_pass()
    prepared = memory._prepared
    assert prepared is not None and prepared.plan is memory._plan
    memory.begin_pass()
    got = [memory.read(a, s) for a, s in good]
    memory.end_pass()
    assert memory._prepared is prepared  # the same plan: built once, not per pass
    assert got == [memory._read(a, s) for a, s in good]
    # a plan whose one range faults: the prepared call comes up short, the general path serves the rest
    memory._plan = good[:2] + [(0x1000, 64)] + good[2:]
    calls = memory.read_calls
    memory.begin_pass()
    assert memory.read_calls - calls >= 2
    assert [memory._served.get((a, s)) for a, s in good] == [memory._read(a, s) for a, s in good]
    memory.end_pass()


def _steady_memory(sleeper):
    """A reader after two passes of four readable ranges: the second read only its plan, so its
    token stands for its bytes.  (memory, ranges, token)"""
    memory = ProcessMemory(sleeper)
    ranges = _readable(sleeper, 4)
    for _ in range(2):
        memory.begin_pass()
        memory.read_many(ranges)
        memory.end_pass()
    return memory, ranges, memory.pass_token()


def test_bytes_outside_windows_are_compared_with_any_kept_pass(sleeper):
    """A sampler keeps a few earlier passes (their tokens) and asks which one a pass matches
    outside its threads' windows: the comparison is of exactly the bytes outside them."""
    memory, ranges, token = _steady_memory(sleeper)
    assert token is not None, "a pass that read only its plan stands for its bytes"
    key = ranges[2]
    windows = [(key, 16)]  # the last bytes of the third range, from its 16th on
    prepared, raw = token
    start = [begin for planned, begin, _ in prepared.spans if planned == key][0]  # where the plan put it
    inside = raw[:start + 20] + bytes([raw[start + 20] ^ 1]) + raw[start + 21:]
    outside = raw[:start + 3] + bytes([raw[start + 3] ^ 1]) + raw[start + 4:]
    memory.begin_pass()
    assert memory.unchanged_outside(windows, token) == []
    assert memory.unchanged_outside(windows, (prepared, inside)) == [0]
    assert memory.unchanged_outside(windows, (prepared, outside)) is None
    assert memory.unchanged_outside([(key, key[1] + 1)], token) is None  # not a window of that range
    memory.end_pass()
    # after the pass, the same question without using the plan
    assert memory.same_outside(windows, token) and memory.same_outside(windows, (prepared, inside))
    assert not memory.same_outside(windows, (prepared, outside))
    assert not memory.same_outside(windows, None)


def test_a_pass_reads_its_plan_again_only_before_serving(sleeper):
    """``read_plan_again`` (a re-read that matched no kept pass, most likely torn): one more call
    of the prepared plan, the same bytes for a target that stood still, and refused once the
    pass has served a read (what was served must stay what the pass is made of)."""
    memory, ranges, token = _steady_memory(sleeper)
    memory.begin_pass()
    first = memory._pass_raw
    calls = memory.read_calls
    assert memory.read_plan_again() and memory.read_calls == calls + 1
    assert memory._pass_raw == first  # (the sleeper's bytes stood still)
    memory.read(*ranges[1])
    assert not memory.read_plan_again(), "a pass that served a read is not read again"
    memory.end_pass()
    memory.begin_pass()
    assert memory.unchanged_outside([(ranges[0], 0)], token) == []
    assert not memory.read_plan_again(), "nor one compared with a kept pass"
    memory.end_pass()
    assert memory.pass_token() is not None
    fresh = ProcessMemory(sleeper)
    fresh.begin_pass()
    assert not fresh.read_plan_again(), "nothing planned, nothing to read again"
    fresh.end_pass()
