"""The Profile's hot-path shortcuts give the same tables as the plain path (synthetic samples)."""
from __future__ import annotations

from snapshot.model import Frame
from snapshot.profile import Profile, Sample

PERIOD = 10_000_000  # 100 Hz
MAIN = Frame("<module>", "/app/main.py", 3)
RUN = Frame("run", "/app/main.py", 10)
SERVE = Frame("serve", "/app/server.py", 42)


def _copy(frame: Frame) -> Frame:
    """An equal Frame that is a different object (what a fresh snapshot would hand over)."""
    return Frame(frame.function, frame.filename, frame.line)


def test_equal_frames_of_different_identity_share_a_stack():
    p = Profile()
    p.add(Sample(0, 1, 5, None, None, True, False, (RUN, MAIN)))
    p.add(Sample(PERIOD, 1, 5, None, None, True, False, (_copy(RUN), _copy(MAIN))))
    p.add(Sample(2 * PERIOD, 1, 5, None, None, True, False, (RUN, MAIN)))       # identity path
    p.add(Sample(3 * PERIOD, 1, 5, None, None, True, False, (SERVE, RUN, MAIN)))
    assert len(p.stacks) == 2 and len(p.frames) == 3
    assert p.counts == {((1, 5), 0): 3, ((1, 5), 1): 1}


def test_add_parts_matches_add():
    a, b = Profile(rate_hz=100), Profile(rate_hz=100)
    for i in range(50):
        stack = (SERVE, RUN, MAIN) if i % 3 else (RUN, MAIN)
        a.add(Sample(i * PERIOD, 1, 7, 70, "w", i % 2 == 0, False, stack, "app"))
        b.add_parts(i * PERIOD, 1, 7, 70, "w", i % 2 == 0, stack, "app")
    assert (a.counts, a.stacks, a.frames, a.samples, a.gil_samples, a.ticks) == \
        (b.counts, b.stacks, b.frames, b.samples, b.gil_samples, b.ticks)
    assert list(a.timeline((1, 7))) == list(b.timeline((1, 7)))
    assert a.threads == b.threads


def test_late_passes_marked_by_the_sampler_keep_one_run():
    """A sampler running behind (passes far apart) must not cut a steady stack into runs."""
    p = Profile(rate_hz=100)
    for i in range(100):
        p.tick(i * 7 * PERIOD)
        p.add_parts(i * 7 * PERIOD, 1, 5, None, None, True, (RUN, MAIN))
    assert p.interval_count == 1


def test_thread_missing_from_marked_passes_still_splits():
    p = Profile(rate_hz=100)
    for i in range(3):
        p.tick(i * PERIOD)
        p.add_parts(i * PERIOD, 1, 5, None, None, True, (RUN, MAIN))
    for i in range(3, 20):  # passes in which the thread was filtered out (idle)
        p.tick(i * PERIOD)
    p.tick(20 * PERIOD)
    p.add_parts(20 * PERIOD, 1, 5, None, None, True, (RUN, MAIN))
    assert p.interval_count == 2


def test_the_same_tuple_again_is_the_same_stack_and_a_freed_one_is_not_mistaken():
    """A tuple handed again (the walker keeps one per remembered stack) is found by its identity;
    a tuple that was freed and whose id another stack's tuple now has cannot be, as the profile
    keeps every tuple it knows by identity alive."""
    p = Profile()
    kept = (SERVE, RUN, MAIN)
    for _ in range(3):
        p.add_parts(0, 1, 5, None, None, True, kept)
    for i in range(200):  # fresh tuples, some equal to ``kept``, most not
        stack = tuple([_copy(SERVE), RUN, MAIN]) if i % 2 else tuple([Frame("f%d" % i, "/x.py", i), MAIN])
        p.add_parts(0, 1, 5, None, None, True, stack)
    plain = Profile()
    for _ in range(3):
        plain.add(Sample(0, 1, 5, None, None, True, False, (SERVE, RUN, MAIN)))
    for i in range(200):
        stack = (SERVE, RUN, MAIN) if i % 2 else (Frame("f%d" % i, "/x.py", i), MAIN)
        plain.add(Sample(0, 1, 5, None, None, True, False, stack))
    assert p.counts == plain.counts and p.stacks == plain.stacks


def test_the_same_tuple_for_a_thread_again_counts_as_the_plain_path_with_its_facts_changing():
    """A sampler hands a thread's very frames tuple while its stack stands still: that sample
    takes its counter from the thread's last one, unless the thread's name, OS id or command
    line changed since (then its info is updated as on the plain path)."""
    fast, plain = Profile(rate_hz=100), Profile(rate_hz=100)
    still, other = (SERVE, RUN, MAIN), (RUN, MAIN)
    for i in range(40):
        name = "w" if i < 10 else "renamed"
        native = 70 if i < 20 else 71
        command = "app" if i < 30 else "app --again"
        stack = other if i % 7 == 6 else still
        for profile, frames in ((fast, stack), (plain, tuple(_copy(f) for f in stack))):
            profile.tick(i * PERIOD)
            profile.add_parts(i * PERIOD, 1, 7, native, name, True, frames, command if i % 5 else "")
    assert (fast.counts, fast.stacks, fast.samples, fast.ticks) == (plain.counts, plain.stacks, plain.samples,
                                                                    plain.ticks)
    assert list(fast.timeline((1, 7))) == list(plain.timeline((1, 7)))
    assert fast.threads == plain.threads
    assert fast.threads[(1, 7)].name == "renamed" and fast.threads[(1, 7)].native_id == 71
    assert fast.threads[(1, 7)].command_line == "app --again"


def test_without_a_timeline_the_tables_are_the_same():
    """``timeline=False`` (formats that do not lay samples out in time) changes only the timeline."""
    from snapshot.writers import needs_timeline
    a, b = Profile(rate_hz=100), Profile(rate_hz=100, timeline=False)
    for i in range(60):
        stack = (SERVE, RUN, MAIN) if i % 4 else (RUN, MAIN)
        for p in (a, b):
            p.tick(i * PERIOD)
            p.add_parts(i * PERIOD, 1, 7, 70, "w", i % 2 == 0, stack, "app")
    assert (a.counts, a.stacks, a.frames, a.samples, a.gil_samples, a.ticks, a.threads) == \
        (b.counts, b.stacks, b.frames, b.samples, b.gil_samples, b.ticks, b.threads)
    assert a.interval_count > 1 and list(a.timeline((1, 7)))
    assert b.interval_count == 0 and list(b.timeline((1, 7))) == []
    assert [f for f in ("flamegraph", "raw", "collapsed", "pprof", "speedscope", "chrometrace")
            if needs_timeline(f)] == ["speedscope", "chrometrace"]


def test_add_threads_matches_add_parts():
    """A pass's ThreadStacks in one call, the same objects coming back (a sampler's stacks kept by
    key), a rename and a rename back: the same tables as one ``add_parts`` per thread."""
    from snapshot.model import ThreadStack
    a = ThreadStack(5, 50, "worker", True, False, (SERVE, RUN, MAIN))
    b = ThreadStack(5, 50, "worker", True, False, (RUN, MAIN))
    c = ThreadStack(6, 60, None, False, True, (MAIN,))
    renamed = ThreadStack(5, 50, "renamed", False, False, (RUN, MAIN))
    passes = [(a, c), (b, c), (a, c), (a, c), (renamed, c), (b, c), (a,), (b, c)] * 3
    one, each = Profile(rate_hz=100), Profile(rate_hz=100)
    held = []
    for i, threads in enumerate(passes):
        for p in (one, each):
            p.tick(i * PERIOD)
        held.append(one.add_threads(i * PERIOD, 1, threads, "app"))
        for t in threads:
            each.add_parts(i * PERIOD, 1, t.thread_id, t.native_id, t.name, t.holds_gil, t.frames, "app")
    assert held == [sum(t.holds_gil for t in threads) for threads in passes]
    assert (one.counts, one.stacks, one.frames, one.samples, one.gil_samples, one.ticks, one.threads) == \
        (each.counts, each.stacks, each.frames, each.samples, each.gil_samples, each.ticks, each.threads)
    assert one.threads[(1, 5)].name == "worker"  # the last pass's name, after the rename back
    for key in ((1, 5), (1, 6)):
        assert list(one.timeline(key)) == list(each.timeline(key))
    assert one.period_ns == each.period_ns


def test_passes_told_by_ticks_still_give_the_time_span():
    """``record`` tells each pass through ``tick`` before its samples: the first and last
    timestamps (pprof's time and duration, the flame graph's seconds, chrometrace's origin)
    must come from those passes too."""
    p = Profile(rate_hz=100)
    for i in range(1, 4):
        p.tick(i * PERIOD)
        p.add_parts(i * PERIOD, 1, 5, None, None, True, (RUN, MAIN))
    assert (p.first_ns, p.last_ns, p.ticks) == (PERIOD, 3 * PERIOD, 3)
    assert p.duration_ns == 3 * PERIOD
