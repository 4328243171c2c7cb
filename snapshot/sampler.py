"""The sampling loop: reads of one or more targets on a deadline schedule, given to sinks.

There is exactly one sampling loop in pyspy-repl: ``record``, ``top``, the
REPL's ``sample``, background ``record start`` and ``watch``, and the hang
capture all run a ``Sampler`` and differ only in what they do with a pass.

``Sampler`` takes a pass over every followed process ``rate`` times a second.
Deadlines are absolute (``start + k * period``), so the rate does not drift
with the cost of a pass or with scheduling delays: a pass that starts after
its deadline counts as *late* and is still taken, so a briefly starved
sampler catches up; only when it falls more than ``CATCH_UP`` seconds behind
does it skip the missed deadlines (counted as *missed*) instead of bursting.  A pass that cannot
read a process counts as an *error* and sampling goes on.

What a pass gives:

* ``on_snapshot(snapshot)``: each process's ``Snapshot`` (stacks only, or
  with locals when ``SamplerOptions.locals``);
* ``sink(sample)``: per-thread ``Sample`` s (``profile.Sample``), keeping only
  the threads the options ask for: idle threads are dropped unless ``idle``
  (like py-spy), and with ``gil`` only the thread holding the GIL is kept;
* ``on_error(pid, error)``: a read that failed (the process is dropped when
  it exited);
* ``on_tick(timestamp_ns)``: before every pass (``Profile.tick``: a timeline
  then knows which threads went unseen in a pass);
* ``on_pass(sampler)``: after every pass (progress lines, flushing, keys); it
  may call ``stop()``.

``SamplerStats`` keeps the counters a progress line or ``top`` header shows,
including what was filtered out (threads seen, active, holding the GIL).
``lock`` (a REPL's pause lock) is held around every read, so two samplers
of one session never pause the target at the same time.

``subprocesses``: a background thread lists the descendants of the root
process about once a second (psutil, ``children.ChildWatcher``) and attaches to each new one with its
own ``Target``; each process is sampled in every pass.  A process that exits
is dropped, keeping what was collected; when the root process and every
follower are gone the loop ends (``stop_reason == "exited"``).

This module never parses with construct: ``Target.sample`` is the hot path.
"""
from __future__ import annotations

import time
from layouts.records import dataclass, field

from .attaching import attach_when_ready, gone  # noqa: F401 - attach_when_ready: kept importable here
from .errors import ProcessExitedError, SnapshotError
from .model import Snapshot
from .profile import Sample

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, ContextManager, Dict, List, Optional, Set

    from .children import ChildWatcher    # imported when children are followed (a thread)

    Sink = Callable[[Sample], None]
    SnapshotSink = Callable[[Snapshot], None]
    ErrorSink = Callable[[int, BaseException], None]

#: Missed deadlines are still sampled (late, back to back) while the loop is at most this
#: many seconds behind, so a starved sampler keeps its rate; further behind, they are skipped.
CATCH_UP = 0.25
#: The longest single sleep, so ``stop()`` from a signal handler acts quickly.
MAX_SLEEP = 0.05


@dataclass
class SamplerOptions:
    rate: float = 100.0
    duration: Optional[float] = None  # seconds; None: until stopped or the target exits
    blocking: bool = True
    gil: bool = False
    idle: bool = False
    subprocesses: bool = False
    passes: Optional[int] = None      # stop after this many passes (``stop_reason == "count"``)
    locals: bool = False              # read whole snapshots with locals (``watch``), not bare stacks
    max_repr: int = 1024              # with ``locals``: cut each value's repr here
    native: bool = False              # merge native (C) frames into every sample (needs blocking)
    native_all: bool = False          # ... with the interpreter's plumbing and C-only threads


@dataclass
class SamplerStats:
    """Counters for progress lines and headers; safe to read from another thread."""

    passes: int = 0          # sampling passes (ticks) taken
    samples: int = 0         # thread samples given to the sink
    errors: int = 0          # failed reads of one process in one pass
    late: int = 0            # passes started after their deadline
    missed: int = 0          # deadlines skipped because the loop fell too far behind
    threads_seen: int = 0    # thread samples read, before filtering
    threads_active: int = 0  # ... of which not idle (not counted when nothing asks which are idle)
    gil_passes: int = 0      # passes where some thread held the GIL
    threads: int = 0         # threads in the latest pass (all processes)
    processes: int = 0       # processes sampled in the latest pass
    started: float = 0.0     # time.monotonic() at start
    ended: Optional[float] = None
    pids: List[int] = field(default_factory=list)  # every process ever sampled

    @property
    def elapsed(self) -> float:
        if not self.started:
            return 0.0
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def behind(self, rate: float) -> bool:
        """The achieved rate fell clearly short of ``rate``: fewer than nine tenths of the passes
        due so far were taken (after the first second, so start-up does not count).  Late passes
        that were still taken (the loop caught up) do not make it behind."""
        elapsed = self.elapsed
        if elapsed < 1.0 or rate <= 0:
            return False
        due = elapsed * rate
        return self.passes < 0.9 * due - 1 or self.missed > 0.1 * due

    def achieved_rate(self) -> float:
        elapsed = self.elapsed
        return self.passes / elapsed if elapsed > 0 else 0.0

    def copy(self) -> "SamplerStats":
        other = SamplerStats(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        other.pids = list(self.pids)
        return other


class Sampler:
    """Samples one process or several (and optionally their descendants) into sinks.

    ``target`` is an attached ``Target`` or a list of them (the first is the
    root: ``alive()`` and ``subprocesses`` are about it).  The caller owns
    the targets it gives; the sampler closes only the ones it attached itself
    (followed subprocesses).  ``alive()`` tells whether the root still runs
    (for a launched child, ``Popen.poll() is None``, which also reaps it).
    """

    def __init__(self, target, sink: Optional[Sink] = None, options: Optional[SamplerOptions] = None,
                 on_pass: Optional[Callable[["Sampler"], None]] = None,
                 alive: Optional[Callable[[], bool]] = None, attach=None,
                 on_snapshot: Optional[SnapshotSink] = None, on_error: Optional[ErrorSink] = None,
                 lock: Optional[ContextManager] = None, on_tick: Optional[Callable[[int], None]] = None,
                 root_pid: Optional[int] = None):
        given = list(target) if isinstance(target, (list, tuple)) else [target]
        if not given and root_pid is None:
            raise ValueError("nothing to sample")
        self.root = given[0] if given else None
        #: The process whose tree is followed: the first target's, or ``root_pid`` when the root
        #: runs no Python (``bash -c 'python app.py'``): then only its descendants are sampled, and
        #: sampling goes on while the root lives even when no Python process has appeared yet.
        self.root_pid = root_pid if root_pid is not None else self.root.pid
        self.options = options or SamplerOptions()
        if self.options.rate <= 0:
            raise ValueError("the sampling rate must be positive")
        self.sink = sink
        # A sink that is the bound ``add`` of an object offering ``add_threads`` (a Profile) is given
        # each pass's kept threads in one call: no Sample object per thread per pass on the hot path.
        owner = getattr(sink, "__self__", None)
        self._add_threads = (getattr(owner, "add_threads", None)
                             if getattr(sink, "__name__", None) == "add" else None)
        #: Whether anything looks at which threads are idle.  Not when idle threads are kept,
        #: no GIL filter applies and the sink is a Profile (its samples carry no idle flag) with
        #: no snapshot consumer: a sample then skips the per-thread system call reads, and
        #: ``threads_active`` is not counted.
        self._idleness = not (self.options.idle and not self.options.gil and self._add_threads is not None
                              and on_snapshot is None)
        self.on_pass = on_pass
        self.on_snapshot = on_snapshot
        self.on_error = on_error
        self.alive = alive
        self.lock = lock
        self.on_tick = on_tick
        self.stats = SamplerStats()
        self.targets: Dict[int, object] = {}
        for each in given:
            self.targets[each.pid] = each
            self.stats.pids.append(each.pid)
        self.stop_reason: Optional[str] = None
        self._stop = False
        self._attach = attach
        self._owned: Set[int] = set()
        self._watcher: Optional[ChildWatcher] = None

    # ------------------------------------------------------------------ control
    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end after the current pass (safe from a signal handler or another thread)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    def close(self) -> None:
        """Close the Targets this sampler attached (followed subprocesses); the caller's stay open."""
        if self._watcher is not None:
            self._watcher.stop_event.set()
            for target in self._watcher.take():
                target.close()
        for pid, target in list(self.targets.items()):
            if pid in self._owned:
                target.close()
            del self.targets[pid]
        self._owned.clear()

    # --------------------------------------------------------------------- loop
    def run(self) -> str:
        """Sample until the duration ends, ``stop()`` is called or every process exits.

        Returns (and sets) ``stop_reason``: ``"duration"``, ``"count"``,
        ``"exited"`` or the reason given to ``stop()``.
        """
        opts = self.options
        period = 1.0 / opts.rate
        stats = self.stats
        stats.started = start = time.monotonic()
        end = start + opts.duration if opts.duration else None
        if opts.subprocesses:
            attach = self._attach
            if attach is None:
                from .target import attach
            from .children import ChildWatcher
            self._watcher = ChildWatcher(self.root_pid, set(self.targets), attach)
            self._watcher.start()
        deadline = start
        tick = 0
        tolerance = min(0.001, period / 5)
        catch_up = max(CATCH_UP, 2 * period)
        monotonic = time.monotonic
        try:
            while not self._stop:
                now = monotonic()
                if end is not None and now >= end:
                    # deadlines before the end the loop was still behind on (late, within
                    # ``catch_up``) were skipped too: every deadline is taken or counted missed
                    owed = (end - deadline) / period
                    if owed > 1e-6:
                        stats.missed += int(owed - 1e-6) + 1
                    self.stop("duration")
                    break
                wait = deadline - now
                if wait > 0:
                    if end is not None and deadline >= end:
                        # the next deadline is past the end: finish on time
                        self._sleep(end - now)
                        continue
                    self._sleep(wait)
                    if self._stop:
                        break
                else:
                    if wait < -tolerance:
                        stats.late += 1
                    if wait < -catch_up:
                        # far behind (the sampler was stopped or starved): skip the missed
                        # deadlines rather than taking them in one burst; the grid stays put
                        skipped = int(-wait / period)
                        stats.missed += skipped
                        tick += skipped
                        deadline = start + tick * period
                self.sample_once()
                tick += 1
                deadline = start + tick * period
                if self.on_pass is not None:
                    self.on_pass(self)
                if not self.targets and not self._root_waits():
                    self.stop("exited")
                elif opts.passes is not None and stats.passes >= opts.passes:
                    self.stop("count")
        finally:
            stats.ended = monotonic()
            if self._watcher is not None:
                self._watcher.stop_event.set()
        return self.stop_reason or "stopped"

    def _root_waits(self) -> bool:
        """A root without Python of its own that still runs (its Python children may come)."""
        if self.root is not None or self._watcher is None:
            return False
        if self.alive is not None:
            return self.alive()
        return not gone(self.root_pid)

    def _sleep(self, seconds: float) -> None:
        sleep = time.sleep
        if seconds <= MAX_SLEEP:  # (a sampler's usual wait: one call)
            sleep(seconds)
            return
        until = time.monotonic() + seconds
        while not self._stop:
            left = until - time.monotonic()
            if left <= 0:
                return
            sleep(left if left < MAX_SLEEP else MAX_SLEEP)

    def _read(self, target) -> Snapshot:
        opts = self.options
        if opts.locals:
            return target.snapshot(locals=True, blocking=opts.blocking, max_repr=opts.max_repr,
                                   native=opts.native, native_all=opts.native_all)
        if opts.native or opts.native_all:
            return target.sample(opts.blocking, native=True, native_all=opts.native_all)
        if self._idleness:
            return target.sample(opts.blocking)
        return target.sample(opts.blocking, idleness=False)

    def sample_once(self) -> None:
        """One pass over every followed process."""
        if self._watcher is not None:
            for target in self._watcher.take():
                self.targets[target.pid] = target
                self._owned.add(target.pid)
                self.stats.pids.append(target.pid)
        stats = self.stats
        stats.passes += 1
        timestamp = time.time_ns()
        if self.on_tick is not None:
            self.on_tick(timestamp)
        lock = self.lock
        threads = 0
        gil_held = False
        for pid, target in list(self.targets.items()):
            if pid == self.root_pid and self.alive is not None and not self.alive():
                self._drop(pid)
                continue
            try:
                if lock is None:
                    snapshot = self._read(target)
                else:
                    with lock:
                        snapshot = self._read(target)
            except ProcessExitedError as e:
                self._failed(pid, e)
                self._drop(pid)
                continue
            except (SnapshotError, OSError, ValueError, IndexError, KeyError, OverflowError, MemoryError) as e:
                # torn or moving memory (more likely with --nonblocking), or the process is going away
                self._failed(pid, e)
                if gone(pid):
                    self._drop(pid)
                else:
                    stats.errors += 1
                continue
            threads += len(snapshot.threads)
            if self.on_snapshot is not None:
                self.on_snapshot(snapshot)
            gil_held = self._deliver(snapshot, timestamp) or gil_held
        stats.threads = threads
        stats.processes = len(self.targets)
        if gil_held:
            stats.gil_passes += 1

    def _failed(self, pid: int, error: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(pid, error)

    def _deliver(self, snapshot: Snapshot, timestamp: int) -> bool:
        """Give the sink the threads the options keep; whether any thread held the GIL."""
        stats = self.stats
        threads = snapshot.threads
        stats.threads_seen += len(threads)
        add_threads = self._add_threads
        if self._idleness:
            kept, gil_held = self._kept(threads)
        else:  # every thread kept, none counted (a Profile: it says who held the GIL)
            kept, gil_held = threads, None
        stats.samples += len(kept)
        sink = self.sink
        if kept and sink is not None:
            command = " ".join(snapshot.command_line)
            if add_threads is not None:
                held = add_threads(timestamp, snapshot.pid, kept, command)
                if gil_held is None:
                    gil_held = held > 0
            else:
                for t in kept:
                    sink(Sample(timestamp, snapshot.pid, t.thread_id, t.native_id, t.name, t.holds_gil,
                                t.is_idle, t.frames, command))
        if gil_held is None:
            gil_held = any(t.holds_gil for t in threads)
        return gil_held

    def _kept(self, threads) -> tuple:
        """(the threads the idle and GIL options keep, whether any thread held the GIL); the
        active ones are counted."""
        opts = self.options
        kept = []
        gil_held = False
        active = 0  # counted here, added to the stats once (this runs per thread and pass)
        for t in threads:
            if t.holds_gil:
                gil_held = True
            elif opts.gil:
                if not t.is_idle:
                    active += 1
                continue
            if t.is_idle:
                if not opts.idle:
                    continue
            else:
                active += 1
            kept.append(t)
        self.stats.threads_active += active
        return kept, gil_held

    def _drop(self, pid: int) -> None:
        target = self.targets.pop(pid, None)
        if target is not None and pid in self._owned:
            self._owned.discard(pid)
            target.close()


__all__ = ["Sampler", "SamplerOptions", "SamplerStats", "attach_when_ready"]
