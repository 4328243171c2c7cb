"""Fold samples into a profile whose size follows distinct stacks, not recording time.

A sampler produces one ``Sample`` per thread per pass.  ``Profile.add`` keeps
one counter per distinct (process, thread, stack), interns frames and stacks
into small integer tables (cheap for every writer: speedscope's shared frame
list and pprof's locations are those tables), and keeps a per-thread
*timeline* of runs of identical stacks for the time-ordered formats
(chrometrace, speedscope's time-order view).  A run only grows when the stack
is unchanged, so a thread sitting in one place for an hour costs one entry;
the timeline is also capped (``max_intervals``) and says when it was cut.

Options mirror ``py-spy record``:

``threads``         a root frame per thread, ``thread (0x7F..)`` / ``thread (0x7F..): name``
``subprocesses``    a root frame per process, ``process PID:"command line"``
``nolineno``        drop line numbers: aggregate by function
``function``        aggregate by function and show its first line (py-spy's ``-F``)
``full_filenames``  full paths in labels instead of the short form
``gil`` / ``idle``  *recorded only*: dropping idle threads or threads without
                    the GIL is the sampler's job (it sees every thread of a pass
                    and decides before paying for the stack); the profile keeps
                    the flags so writers can say what they measured
                    (pprof's ``cpu`` vs ``wall``).
``rate_hz``         the sampling rate asked for; without it the period is
                    estimated from the timestamps.

Labels follow py-spy: ``function (short_filename:line)``, or
``function (short_filename)`` when the line is dropped or unknown.
"""
from __future__ import annotations

from array import array
from layouts.records import dataclass, replace

from .model import _FROZEN, Frame, Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Iterable, Iterator, List, Optional, Tuple

    ThreadKey = Tuple[int, int]  # (pid, thread_id)

#: Stacks remembered by frame identity before that cache is emptied (samples with locals
#: bring new Frame objects every time; the real tables are not affected).
MAX_IDENTITY_STACKS = 50_000
#: Stack tuples known by their own identity (a sampler that builds a new tuple per sample fills
#: this with tuples seen once: it is emptied when full).
MAX_TUPLE_STACKS = 1024


@dataclass(**_FROZEN)
class Sample:
    """One thread's stack at one instant, as the sampler saw it."""

    timestamp_ns: int
    pid: int
    thread_id: int
    native_id: Optional[int]
    thread_name: Optional[str]
    holds_gil: bool
    is_idle: bool
    frames: Tuple[Frame, ...]  # innermost first, as in model.ThreadStack
    command_line: str = ""


def samples_from_snapshot(snapshot: Snapshot, timestamp_ns: Optional[int] = None) -> List[Sample]:
    """Turn one sampling pass (a Snapshot) into per-thread Samples.

    Every thread gets the same timestamp, which is what lets the profile count
    passes (``ticks``) and estimate the rate.
    """
    stamp = snapshot.taken_at_ns if timestamp_ns is None else timestamp_ns
    command = " ".join(snapshot.command_line)
    return [Sample(stamp, snapshot.pid, t.thread_id, t.native_id, t.name, t.holds_gil, t.is_idle,
                   t.frames, command) for t in snapshot.threads]


@dataclass(**_FROZEN)
class ProfileOptions:
    """How samples are folded and labelled (py-spy ``record`` flags)."""

    threads: bool = False
    subprocesses: bool = False
    nolineno: bool = False
    function: bool = False
    full_filenames: bool = False
    gil: bool = False
    idle: bool = False
    rate_hz: Optional[float] = None
    max_intervals: int = 1_000_000
    #: Keep each thread's run-length timeline (``timeline``): only the time-ordered formats
    #: (``writers.needs_timeline``) read it; the others skip its upkeep on every sample and its memory.
    timeline: bool = True


@dataclass(**_FROZEN)
class ThreadInfo:
    """What we last knew about a thread (names can change while recording)."""

    pid: int
    thread_id: int
    native_id: Optional[int]
    name: Optional[str]
    command_line: str


@dataclass(**_FROZEN)
class Interval:
    """A run of consecutive samples of one thread with the same stack."""

    start_ns: int
    end_ns: int
    stack_id: int
    samples: int


@dataclass(**_FROZEN)
class ProfileMapping:
    """A binary mapped into a sampled process: where, which file, which build."""

    pid: int
    start: int
    end: int
    file_offset: int
    path: str
    build_id: str = ""


class _Track:
    """One thread's timeline as four flat arrays: 24 bytes per run, no objects."""

    __slots__ = ("starts", "lasts", "stacks", "counts", "joined", "last_pass")

    def __init__(self) -> None:
        self.starts = array("q")
        self.lasts = array("q")
        self.stacks = array("l")
        self.counts = array("l")
        self.joined = array("b")  # 1: the next run follows without the thread going unseen
        self.last_pass = 0  # the pass (``Profile.tick``) of the thread's latest sample

    def __len__(self) -> int:
        return len(self.starts)


def thread_label(info: ThreadInfo) -> str:
    """py-spy's thread root frame."""
    text = "thread (0x%X)" % info.thread_id
    return "%s: %s" % (text, info.name) if info.name else text


def process_label(pid: int, command_line: str) -> str:
    """py-spy's process root frame."""
    return 'process %d:"%s"' % (pid, command_line)


class Profile:
    """Counts per distinct (pid, thread, stack), frame/stack tables, timelines, totals."""

    def __init__(self, options: Optional[ProfileOptions] = None, **overrides) -> None:
        self.options = replace(options or ProfileOptions(), **overrides)
        self._timeline = self.options.timeline
        # interned tables; stacks are tuples of frame ids, OUTERMOST FIRST
        self.frames: List[Frame] = []
        self._frame_ids: Dict[Frame, int] = {}
        self.stacks: List[Tuple[int, ...]] = []
        self._stack_ids: Dict[Tuple[int, ...], int] = {}
        # Fast path: the sampler hands the same (interned) Frame objects sample after sample, so a
        # stack is found by the identities of its frames -- one tuple of ints and one dict lookup per
        # sample instead of hashing every frozen Frame. Each entry keeps its frames tuple alive, so
        # an id cannot be reused while it is a key; bounded, since it is only a cache.
        self._by_identity: Dict[Tuple[int, ...], Tuple[int, Tuple[Frame, ...]]] = {}
        #: id(frames tuple) -> (stack id, that tuple): a sampler handing the very same tuple again
        #: (the walker keeps one per remembered stack) skips even the tuple of ids.
        self._by_tuple: Dict[int, Tuple[int, Tuple[Frame, ...]]] = {}
        self.counts: Dict[Tuple[ThreadKey, int], int] = {}
        #: per thread, its last sample's (frames, name, native id, command line, counter key)
        self._last: Dict[ThreadKey, tuple] = {}
        #: id(ThreadStack) -> (it, command line, pid, counter key): what ``add_threads`` was given
        self._by_stack: Dict[int, tuple] = {}
        self.threads: Dict[ThreadKey, ThreadInfo] = {}
        self._tracks: Dict[ThreadKey, _Track] = {}
        self._intervals = 0
        self.timeline_truncated = False
        # lowest line seen per (function, filename): the first line for ``function`` mode
        self._first_lines: Dict[Tuple[str, str], int] = {}
        # totals
        self.samples = 0
        self.gil_samples = 0
        self.errors = 0
        self.late = 0
        self.missed = 0           # deadlines the sampler skipped (it fell too far behind)
        self.ticks = 0
        self._per_thread: Dict[ThreadKey, int] = {}
        self._passes = 0  # samples of the most-sampled thread: passes, however stamped
        self.first_ns: Optional[int] = None
        self.last_ns: Optional[int] = None
        self._last_tick_ns: Optional[int] = None
        self._pass = 0            # passes announced through ``tick`` (0: never told)
        #: Mapped binaries of the sampled processes, main executable first (pprof's mappings):
        #: ``ProfileMapping`` s, filled by ``add_mappings``.
        self.mappings: List["ProfileMapping"] = []

    # ----------------------------------------------------------------- input
    def tick(self, timestamp_ns: int) -> None:
        """A sampling pass began at ``timestamp_ns`` (the sampler calls this before its samples).

        Knowing the passes lets a timeline tell a thread seen in every pass
        (one continuous run, however late the passes came) from one that was
        not seen in some pass (idle, filtered out, or unreadable): only then
        does a run end early.  Without ticks, the gap between samples decides.
        """
        self._pass += 1
        self._stamp(timestamp_ns)

    def add(self, sample: Sample) -> None:
        """Fold one sample in: one dict update, one frame lookup per frame."""
        self.add_parts(sample.timestamp_ns, sample.pid, sample.thread_id, sample.native_id, sample.thread_name,
                       sample.holds_gil, sample.frames, sample.command_line)

    def add_parts(self, ts: int, pid: int, thread_id: int, native_id: Optional[int], thread_name: Optional[str],
                  holds_gil: bool, frames: Tuple[Frame, ...], command_line: str = "") -> None:
        """``add`` without the ``Sample``: the sampler's hot path (no object per thread and sample)."""
        if ts != self._last_tick_ns:
            self._stamp(ts)
        self.samples += 1
        self.gil_samples += holds_gil

        key = (pid, thread_id)
        seen = self._per_thread[key] = self._per_thread.get(key, 0) + 1
        if seen > self._passes:
            self._passes = seen
        # The thread's last sample had the very same frames tuple and facts (a sampler hands the
        # same tuple while a stack stands still): its info and its counter are this sample's too.
        last = self._last.get(key)
        if (last is not None and last[0] is frames and last[1] == thread_name and last[2] == native_id
                and (not command_line or last[3] == command_line)):
            counter = last[4]
            self.counts[counter] += 1
            if self._timeline:
                self._extend_timeline(key, ts, counter[1])
            return
        info = self.threads.get(key)
        if (info is None or info.name != thread_name or info.native_id != native_id
                or (command_line and info.command_line != command_line)):
            self._by_stack.clear()  # (what ``add_threads`` knew by ThreadStack held for the old facts)
            info = self.threads[key] = ThreadInfo(pid, thread_id, native_id, thread_name,
                                                  command_line or (info.command_line if info else ""))

        stack_id = self._intern_stack(frames)
        counter = (key, stack_id)
        self.counts[counter] = self.counts.get(counter, 0) + 1
        self._last[key] = (frames, thread_name, native_id, info.command_line, counter)  # (holds frames: ids stay)
        if self._timeline:
            self._extend_timeline(key, ts, stack_id)

    def add_threads(self, ts: int, pid: int, threads, command_line: str = "") -> int:
        """``add_parts`` for each ThreadStack of one pass; returns how many held the GIL.  One met
        before (a sampler hands it again while its thread stands still) costs a few counters."""
        if ts != self._last_tick_ns:
            self._stamp(ts)
        by_stack, per_thread, counts = self._by_stack, self._per_thread, self.counts
        held = fast = fast_held = 0
        for t in threads:
            known = by_stack.get(id(t))
            held += t.holds_gil
            if known is not None and known[0] is t and known[1] == command_line and known[2] == pid:
                fast += 1
                fast_held += t.holds_gil
                counter = known[3]
                key = counter[0]
                seen = per_thread[key] = per_thread[key] + 1
                if seen > self._passes:
                    self._passes = seen
                counts[counter] += 1
                if self._timeline:
                    self._extend_timeline(key, ts, counter[1])
            else:
                self.add_parts(ts, pid, t.thread_id, t.native_id, t.name, t.holds_gil, t.frames, command_line)
                if len(by_stack) >= MAX_TUPLE_STACKS:
                    by_stack.clear()
                by_stack[id(t)] = (t, command_line, pid, self._last[(pid, t.thread_id)][4])  # (holds t: ids stay)
        self.samples += fast
        self.gil_samples += fast_held
        return held

    def _stamp(self, ts: int) -> None:
        """A new timestamp: one more pass (the sampler stamps every thread of a pass alike)."""
        self.ticks += 1
        self._last_tick_ns = ts
        if self.first_ns is None or ts < self.first_ns:
            self.first_ns = ts
        if self.last_ns is None or ts > self.last_ns:
            self.last_ns = ts

    def add_mappings(self, pid: int, executable: str, files) -> None:
        """Remember a process's mapped ELF files (``Process.mapped_files()``), its executable first,
        so profile formats that describe binaries (pprof) name the right main binary."""
        def is_main(f) -> bool:
            return bool(executable) and f.path == executable
        ordered = sorted(files, key=lambda f: (not is_main(f), f.start))
        known = {(m.pid, m.path) for m in self.mappings}
        for f in ordered:
            if (pid, f.path) not in known:
                self.mappings.append(ProfileMapping(pid, f.start, f.end, 0, f.path, f.build_id or ""))
        if executable and not any(m.pid == pid and m.path == executable for m in self.mappings):
            self.mappings.insert(0, ProfileMapping(pid, 0, 0, 0, executable))

    def add_all(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            self.add(sample)

    def _intern_frame(self, frame: Frame) -> int:
        opts = self.options
        if opts.function or opts.nolineno:
            if opts.function:
                place = (frame.function, frame.filename)
                first = getattr(frame, "first_line", None) or frame.line
                known = self._first_lines.get(place)
                if first and (known is None or first < known):
                    self._first_lines[place] = first
            key = Frame(frame.function, frame.filename, 0, None, frame.is_native, module=frame.module,
                        address=frame.address)
        elif frame.locals is None and not frame.is_entry:
            key = frame
        else:
            # One profile frame per place: whether an eval-loop call started there does not split it.
            key = Frame(frame.function, frame.filename, frame.line, None, frame.is_native, module=frame.module,
                        address=frame.address)
        fid = self._frame_ids.get(key)
        if fid is None:
            fid = self._frame_ids[key] = len(self.frames)
            self.frames.append(key)
        return fid

    def _intern_stack(self, frames: Tuple[Frame, ...]) -> int:
        same = self._by_tuple.get(id(frames))
        if same is not None and same[1] is frames:  # the very tuple seen before (a remembered tail's)
            return same[0]
        identity = tuple(map(id, frames))
        hit = self._by_identity.get(identity)
        if hit is not None:
            self._remember_tuple(frames, hit[0])
            return hit[0]
        ids = tuple(self._intern_frame(frame) for frame in reversed(frames))
        sid = self._stack_ids.get(ids)
        if sid is None:
            sid = self._stack_ids[ids] = len(self.stacks)
            self.stacks.append(ids)
        if len(self._by_identity) >= MAX_IDENTITY_STACKS:
            self._by_identity.clear()
        self._by_identity[identity] = (sid, tuple(frames))
        self._remember_tuple(frames, sid)
        return sid

    def _remember_tuple(self, frames: Tuple[Frame, ...], sid: int) -> None:
        by_tuple = self._by_tuple
        if type(frames) is tuple:
            if len(by_tuple) >= MAX_TUPLE_STACKS:
                by_tuple.clear()
            by_tuple[id(frames)] = (sid, frames)  # keeps the tuple alive: its id stays its own

    def _extend_timeline(self, key: ThreadKey, ts: int, stack_id: int) -> None:
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track()
        this_pass = self._pass
        previous_pass, track.last_pass = track.last_pass, this_pass
        lasts = track.lasts
        if lasts:  # (an array's truth is its length, taken in C: this runs per thread and sample)
            if this_pass:
                adjacent = previous_pass == this_pass - 1
            else:
                gap = self._gap_limit_ns()
                adjacent = gap is None or ts - lasts[-1] <= gap
            if adjacent and ts >= lasts[-1]:
                if track.stacks[-1] == stack_id:
                    lasts[-1] = ts
                    track.counts[-1] += 1
                    return
                # seen in the previous pass, now in another stack: the old run lasted until now
                track.joined[-1] = 1
        if self._intervals >= self.options.max_intervals:
            self.timeline_truncated = True
            return
        self._intervals += 1
        track.starts.append(ts)
        track.lasts.append(ts)
        track.stacks.append(stack_id)
        track.counts.append(1)
        track.joined.append(0)

    def _gap_limit_ns(self) -> Optional[int]:
        """A thread unseen for more than two periods did not run that stack meanwhile."""
        period = self.period_ns
        return None if period is None else 2 * period

    # ---------------------------------------------------------------- totals
    @property
    def duration_ns(self) -> int:
        if self.first_ns is None or self.last_ns is None:
            return 0
        return self.last_ns - self.first_ns + (self.period_ns or 0)

    @property
    def period_ns(self) -> Optional[int]:
        """The sampling period: asked for, else estimated from the busiest thread.

        Counting a thread's own samples, not distinct timestamps, keeps the
        estimate right whether the sampler stamps a whole pass once or each
        thread separately.
        """
        if self.options.rate_hz:
            return int(round(1e9 / self.options.rate_hz))
        if self._passes > 1 and self.first_ns is not None and self.last_ns is not None:
            span = self.last_ns - self.first_ns
            if span > 0:
                return span // (self._passes - 1)
        return None

    @property
    def rate_hz(self) -> Optional[float]:
        period = self.period_ns
        return 1e9 / period if period else None

    @property
    def time_kind(self) -> str:
        """``wall`` when idle threads were sampled too, else ``cpu`` (what pprof names it)."""
        return "wall" if self.options.idle else "cpu"

    # ---------------------------------------------------------------- labels
    def frame_label(self, frame_id: int) -> str:
        """py-spy's ``function (file:line)``."""
        frame = self.frames[frame_id]
        filename = frame.filename if self.options.full_filenames else frame.short_filename
        line = self.display_line(frame_id)
        if line and not self.options.nolineno:
            return "%s (%s:%d)" % (frame.function, filename, line)
        if filename:
            return "%s (%s)" % (frame.function, filename)
        return frame.function

    def display_line(self, frame_id: int) -> int:
        """The line to show: the sampled one, or the function's first in ``function`` mode."""
        frame = self.frames[frame_id]
        if self.options.nolineno:
            return 0
        if self.options.function:
            return self._first_lines.get((frame.function, frame.filename), 0)
        return frame.line

    def root_labels(self, key: ThreadKey) -> Tuple[str, ...]:
        """The synthetic root frames the options ask for (process, then thread)."""
        info = self.threads[key]
        roots: Tuple[str, ...] = ()
        if self.options.subprocesses:
            roots += (process_label(info.pid, info.command_line),)
        if self.options.threads:
            roots += (thread_label(info),)
        return roots

    @property
    def pids(self) -> List[int]:
        seen: Dict[int, None] = {}
        for pid, _ in self.threads:
            seen.setdefault(pid, None)
        return list(seen)

    # ----------------------------------------------------------------- views
    def by_thread(self) -> Dict[ThreadKey, List[Tuple[int, int]]]:
        """Thread -> [(stack_id, count)], threads and stacks in first-seen order."""
        grouped: Dict[ThreadKey, List[Tuple[int, int]]] = {key: [] for key in self.threads}
        for (key, stack_id), count in self.counts.items():
            grouped[key].append((stack_id, count))
        return grouped

    def collapsed(self) -> Dict[Tuple[str, ...], int]:
        """Label stacks (outermost first, roots included) -> count, merged across threads.

        Empty stacks (a thread with no Python frame and no root frame asked
        for) have nowhere to go in a flame graph and are left out; they still
        count in ``samples``.
        """
        labels = [self.frame_label(i) for i in range(len(self.frames))]
        merged: Dict[Tuple[str, ...], int] = {}
        for (key, stack_id), count in self.counts.items():
            path = self.root_labels(key) + tuple(labels[f] for f in self.stacks[stack_id])
            if path:
                merged[path] = merged.get(path, 0) + count
        return merged

    def timeline(self, key: ThreadKey) -> Iterator[Interval]:
        """Runs of one thread in time order.  A run ends where the next starts when the thread
        was seen in every pass between them (however late those passes came), else a period
        after its last sample (the thread then went unseen: idle, filtered out, unreadable)."""
        track = self._tracks.get(key)
        if track is None:
            return
        period = self.period_ns or 0
        n = len(track)
        for i in range(n):
            end = track.lasts[i] + period
            if i + 1 < n:
                following = track.starts[i + 1]
                end = following if (track.joined[i] or not period) else min(end, following)
            yield Interval(track.starts[i], max(end, track.starts[i]), track.stacks[i], track.counts[i])

    @property
    def interval_count(self) -> int:
        return self._intervals
