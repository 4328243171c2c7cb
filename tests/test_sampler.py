"""The sampling loop (snapshot/sampler.py): schedule, counters, filters, exit; real targets on every interpreter."""
from __future__ import annotations

import os
import time

import pytest

import pythons
from pythons import Target, target_script
from snapshot import attach
from snapshot.errors import MemoryReadError, ProcessExitedError
from snapshot.model import Frame, Snapshot, ThreadStack
from snapshot.profile import Profile
from snapshot.sampler import Sampler, SamplerOptions


class FakeTarget:
    """A target whose sample() costs ``cost`` seconds and fails on chosen passes."""

    def __init__(self, pid=None, cost=0.0, fail=(), exit_after=None):
        self.pid = pid or os.getpid()  # a live pid: errors are not mistaken for an exit
        self.cost = cost
        self.fail = set(fail)
        self.exit_after = exit_after
        self.calls = 0
        self.command_line = ("python", "fake.py")

    def sample(self, blocking=True, **kwargs):
        self.calls += 1
        self.kwargs = kwargs
        if self.exit_after is not None and self.calls > self.exit_after:
            raise ProcessExitedError("gone")
        if self.calls in self.fail:
            raise MemoryReadError(0x1000, 8, "torn")
        if self.cost:
            end = time.perf_counter() + self.cost
            while time.perf_counter() < end:
                pass
        main = ThreadStack(1, 11, "MainThread", True, False, (Frame("work", "/x/app.py", 3),))
        idle = ThreadStack(2, 12, "idler", False, True, (Frame("wait", "/x/app.py", 9),))
        busy = ThreadStack(3, 13, "nogil", False, False, (Frame("crunch", "/x/app.py", 5),))
        return Snapshot(self.pid, "3.12.1", "/usr/bin/python3", time.time_ns(), (main, idle, busy),
                        self.command_line)

    def snapshot(self, locals=False, blocking=True, max_repr=1024, **kwargs):
        self.snapshots = getattr(self, "snapshots", 0) + 1
        self.asked = (locals, blocking, max_repr)
        return self.sample(blocking)

    def close(self):
        self.closed = True


def test_rate_and_duration_do_not_drift():
    target = FakeTarget(cost=0.002)
    sampler = Sampler(target, None, SamplerOptions(rate=100, duration=1.0))
    assert sampler.run() == "duration"
    s = sampler.stats
    # 100 deadlines in one second; a pass costing 2 ms must not stretch the period to 12 ms (83
    # passes).  Counted, not timed: every deadline is either taken (late or not) or counted missed.
    assert 99 <= s.passes + s.missed <= 101, s
    assert s.elapsed >= 0.95


def test_late_passes_are_counted_and_caught_up():
    target = FakeTarget(cost=0.015)  # each pass takes longer than the 10 ms period
    sampler = Sampler(target, None, SamplerOptions(rate=100, duration=1.0))
    sampler.run()
    s = sampler.stats
    assert s.late >= s.passes - 2 > 5, s
    assert s.missed > 0  # more than CATCH_UP behind: skipped, not burst
    # and the deadlines it was still behind on when the time was up count as missed too
    assert 99 <= s.passes + s.missed <= 101, s


def test_errors_are_counted_and_sampling_goes_on():
    target = FakeTarget(fail={2, 3, 5})
    profile = Profile()
    sampler = Sampler(target, profile.add, SamplerOptions(rate=200, passes=40))
    sampler.run()
    assert sampler.stats.errors == 3
    assert sampler.stats.passes == 40
    assert profile.ticks == sampler.stats.passes - 3


def test_filters_idle_and_gil():
    seen = {}
    for opts in ({}, {"idle": True}, {"gil": True}, {"gil": True, "idle": True}):
        names = set()
        sampler = Sampler(FakeTarget(), lambda s: names.add(s.thread_name), SamplerOptions(rate=200, passes=10, **opts))
        sampler.run()
        seen[tuple(sorted(opts))] = names
        assert sampler.stats.threads_seen == 3 * sampler.stats.passes
        assert sampler.stats.threads_active == 2 * sampler.stats.passes
        assert sampler.stats.gil_passes == sampler.stats.passes
    assert seen[()] == {"MainThread", "nogil"}
    assert seen[("idle",)] == {"MainThread", "nogil", "idler"}
    assert seen[("gil",)] == {"MainThread"}
    assert seen[("gil", "idle")] == {"MainThread"}


def test_idleness_is_read_only_when_something_looks_at_it():
    """``record --idle`` keeps every thread and writes no idle flag: its samples ask the target for
    no idleness (``idleness=False``) and count no active threads; any filter, a snapshot consumer or
    a sink that sees ``Sample.is_idle`` keeps the full read."""
    def run(sink=None, on_snapshot=None, **opts):
        target = FakeTarget()
        profile = Profile()
        sampler = Sampler(target, sink or profile.add, SamplerOptions(rate=200, passes=5, **opts),
                          on_snapshot=on_snapshot)
        sampler.run()
        return target.kwargs.get("idleness", True), sampler.stats, profile
    idleness, stats, profile = run(idle=True)
    assert idleness is False and stats.threads_active == 0
    assert stats.threads_seen == stats.samples == 3 * stats.passes  # every thread is still kept
    assert profile.samples == stats.samples
    for opts in ({}, {"gil": True}, {"idle": True, "gil": True}):
        idleness, stats, _ = run(**opts)
        assert idleness is True and stats.threads_active == 2 * stats.passes, opts
    assert run(idle=True, on_snapshot=lambda snap: None)[0] is True
    assert run(sink=lambda sample: None, idle=True)[0] is True


def test_target_exit_ends_sampling_and_keeps_samples():
    profile = Profile()
    sampler = Sampler(FakeTarget(exit_after=20), profile.add, SamplerOptions(rate=500))
    assert sampler.run() == "exited"
    assert profile.ticks == 20


def test_stop_from_callback():
    sampler = Sampler(FakeTarget(), None, SamplerOptions(rate=1000),
                      on_pass=lambda s: s.stats.passes >= 7 and s.stop("enough"))
    assert sampler.run() == "enough"
    assert sampler.stats.passes == 7


class CountingLock:
    def __init__(self):
        self.entered = 0
        self.held = False

    def __enter__(self):
        self.entered += 1
        self.held = True

    def __exit__(self, *exc):
        self.held = False


def test_several_targets_hooks_lock_and_pass_count():
    """What the hang capture, the REPL's watch and background record ask of the one loop."""
    lock = CountingLock()
    first, second = FakeTarget(pid=os.getpid()), FakeTarget(pid=os.getppid(), fail={2})
    seen, errors = [], []
    sampler = Sampler([first, second], None, SamplerOptions(rate=1000, passes=4),
                      on_snapshot=lambda snap: seen.append((snap.pid, lock.held)),
                      on_error=lambda pid, e: errors.append((pid, type(e).__name__)), lock=lock)
    assert sampler.run() == "count"
    assert sampler.stats.passes == 4 and first.calls == second.calls == 4
    assert lock.entered == 8                                   # every read under the lock...
    assert all(not held for _, held in seen)                   # ...and the hooks outside it
    assert [pid for pid, _ in seen].count(second.pid) == 3
    assert errors == [(second.pid, "MemoryReadError")]
    sampler.close()
    assert not hasattr(first, "closed") and not hasattr(second, "closed")   # the caller's targets


def test_locals_reads_and_stop_from_another_thread():
    import threading
    target = FakeTarget()
    sampler = Sampler(target, None, SamplerOptions(rate=200, locals=True, max_repr=64, blocking=False))
    timer = threading.Timer(0.1, sampler.stop, args=("stopped elsewhere",))
    timer.start()
    try:
        assert sampler.run() == "stopped elsewhere"
    finally:
        timer.cancel()
    assert target.snapshots == target.calls > 0 and target.asked == (True, False, 64)


# --------------------------------------------------------------------------- real processes

@pytest.fixture(scope="module")
def mixed(python, tmp_path_factory):
    t = Target(python.path, target_script("threads_mix.py"), ["60"], str(tmp_path_factory.mktemp("mix")))
    pythons.wait_for_threads(t.pid, 3)
    yield t
    t.stop()


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "nonblocking"])
def test_real_target(mixed, blocking):
    target = attach(mixed.pid)
    try:
        profile = Profile(rate_hz=100)
        sampler = Sampler(target, profile.add, SamplerOptions(rate=100, passes=100, blocking=blocking, idle=True))
        sampler.run()
        s = sampler.stats
        assert s.passes == 100 and s.errors <= s.passes // 20, s
        assert s.threads == 3
        functions = {f.function for stack in profile.stacks for f in (profile.frames[i] for i in stack)}
        assert {"busy_loop", "idle_wait"} <= functions, functions
        names = {info.name for info in profile.threads.values()}
        assert names == {"MainThread", "sleeper-0", "sleeper-1"}
        assert s.gil_passes >= s.passes * 0.5  # the busy thread holds the GIL most of the time
        if not blocking:
            # kept idle threads in a profile: no thread's system call is read (one read each)
            asked = []
            real = target.process.syscalls
            target.process.syscalls = lambda tids: asked.append(tids) or real(tids)
            again = Profile(rate_hz=100)
            kept = Sampler(target, again.add, SamplerOptions(rate=100, passes=20, blocking=False, idle=True))
            kept.run()
            assert asked == [] and again.samples == 3 * (20 - kept.stats.errors) > 0
    finally:
        target.close()


def test_real_target_exit(python, tmp_path):
    t = Target(python.path, target_script("threads_mix.py"), ["3"], str(tmp_path))
    try:
        pythons.wait_for_threads(t.pid, 3)
        target = attach(t.pid)
        profile = Profile()
        sampler = Sampler(target, profile.add, SamplerOptions(rate=100, duration=120))
        assert sampler.run() == "exited"
        assert profile.samples > 0
        target.close()
    finally:
        t.stop()


def test_behind_when_passes_cost_more_than_the_period():
    """A pass costing 4 ms cannot keep 1000 Hz: the stats say so (and count late/missed passes)."""
    target = FakeTarget(cost=0.004)
    sampler = Sampler(target, None, SamplerOptions(rate=1000, duration=1.5))
    sampler.run()
    s = sampler.stats
    assert s.behind(1000), s
    assert s.late + s.missed > 0 and s.achieved_rate() < 500, s


def test_behind_rule_on_counts():
    from snapshot.sampler import SamplerStats
    on_time = SamplerStats(passes=200, started=1.0, ended=3.0)
    assert not on_time.behind(100)
    starved = SamplerStats(passes=263, started=1.0, ended=3.0)  # the 263 of 2000 at -r 1000
    assert starved.behind(1000)
    caught_up = SamplerStats(passes=200, late=40, started=1.0, ended=3.0)
    assert not caught_up.behind(100)  # late but taken: the rate was kept
    skipping = SamplerStats(passes=170, missed=30, started=1.0, ended=3.0)
    assert skipping.behind(100)
    assert not SamplerStats(passes=1, started=1.0, ended=1.5).behind(1000)  # too early to tell


def test_on_tick_announces_every_pass_before_its_samples():
    events = []
    target = FakeTarget()
    sampler = Sampler(target, lambda s: events.append(("sample", s.timestamp_ns)),
                      SamplerOptions(rate=1000, passes=5), on_tick=lambda ts: events.append(("tick", ts)))
    sampler.run()
    ticks = [ts for kind, ts in events if kind == "tick"]
    assert len(ticks) == 5
    for i, (kind, ts) in enumerate(events):
        if kind == "sample":
            assert ts in ticks and events.index(("tick", ts)) < i
