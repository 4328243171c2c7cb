"""Trace Event Format JSON for chrome://tracing, Perfetto and speedscope.

Each thread's timeline (runs of identical stacks) becomes properly nested
complete events (``ph: "X"``): when the stack changes, frames below the
common prefix stay open, frames above it close and new ones open.  Times are
whole microseconds, floored from nanoseconds, which keeps children inside
their parents exactly (no float rounding).  ``M`` events name processes and
threads.  The run-length timeline keeps memory bounded; if it was capped the
trace says so in ``otherData``.
"""
from __future__ import annotations

import json

from ..profile import Profile
from .base import Writer
from .speedscope import exporter

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from ..profile import ThreadKey
    from typing import Any, Dict, IO, Iterator, List, Tuple


class ChrometraceWriter(Writer):
    name = "chrometrace"
    extension = ".trace.json"
    binary = False
    description = "Chrome trace events (chrome://tracing, Perfetto)"

    def render(self, profile: Profile, stream: IO) -> None:
        """Streamed in batches: a long trace never exists as one Python object.

        Complete events are formatted from per-frame JSON fragments encoded
        once, which is several times faster than encoding millions of dicts.
        """
        encode = json.JSONEncoder(separators=(",", ":")).encode
        origin = profile.first_ns or 0
        fragments: Dict[int, str] = {}
        stream.write('{"traceEvents":[')
        batch: List[str] = []
        separator = ""  # becomes "," once a batch has been written
        for key, meta in self._metadata(profile):
            batch.extend(encode(event) for event in meta)
            where = '"pid":%d,"tid":%d' % (key[0], self._tid(profile, key))
            for frame_id, start, end in self._spans(profile, key):
                fragment = fragments.get(frame_id)
                if fragment is None:
                    fragment = fragments[frame_id] = encode(self._frame_fields(profile, frame_id))[1:-1]
                start_us = (start - origin) // 1000
                batch.append('{"ph":"X","ts":%d,"dur":%d,%s,%s}' % (
                    start_us, (end - origin) // 1000 - start_us, where, fragment))
                if len(batch) >= 8192:
                    stream.write(separator + ",".join(batch))
                    separator, batch = ",", []
        if batch:
            stream.write(separator + ",".join(batch))
        stream.write('],"displayTimeUnit":"ms","otherData":%s}' % encode(self.other_data(profile)))

    def document(self, profile: Profile) -> Dict[str, Any]:
        """The whole trace as one dict (for callers that post-process it)."""
        return {"traceEvents": list(self.events(profile)), "displayTimeUnit": "ms",
                "otherData": self.other_data(profile)}

    @staticmethod
    def other_data(profile: Profile) -> Dict[str, Any]:
        other: Dict[str, Any] = {"exporter": exporter(), "samples": profile.samples,
                                 "passes": profile.ticks, "late": profile.late,
                                 "missed": getattr(profile, "missed", 0)}
        if profile.options.rate_hz:
            other["rate_hz"] = profile.options.rate_hz
        if profile.timeline_truncated:
            other["truncated"] = "timeline capped at %d runs" % profile.options.max_intervals
        return other

    def events(self, profile: Profile) -> Iterator[Dict[str, Any]]:
        origin = profile.first_ns or 0
        for key, meta in self._metadata(profile):
            yield from meta
            pid, tid = key[0], self._tid(profile, key)
            for frame_id, start, end in self._spans(profile, key):
                start_us = (start - origin) // 1000
                event: Dict[str, Any] = {"ph": "X", "ts": start_us, "dur": (end - origin) // 1000 - start_us,
                                         "pid": pid, "tid": tid}
                event.update(self._frame_fields(profile, frame_id))
                yield event

    @staticmethod
    def _tid(profile: Profile, key: ThreadKey) -> int:
        """The OS thread id when known (what other tools show), else the Python one."""
        info = profile.threads[key]
        return info.native_id if info.native_id is not None else info.thread_id

    def _metadata(self, profile: Profile) -> Iterator[Tuple[ThreadKey, List[Dict[str, Any]]]]:
        """Per thread: its naming events (and its process's, the first time)."""
        seen_pids = set()
        for key, info in profile.threads.items():
            tid = self._tid(profile, key)
            events = []
            if info.pid not in seen_pids:
                seen_pids.add(info.pid)
                events.append({"ph": "M", "name": "process_name", "pid": info.pid, "tid": tid,
                               "args": {"name": info.command_line or "python %d" % info.pid}})
            events.append({"ph": "M", "name": "thread_name", "pid": info.pid, "tid": tid,
                           "args": {"name": info.name or "Thread 0x%X" % info.thread_id}})
            yield key, events

    @staticmethod
    def _frame_fields(profile: Profile, frame_id: int) -> Dict[str, Any]:
        frame = profile.frames[frame_id]
        args: Dict[str, Any] = {"filename": frame.filename}
        line = profile.display_line(frame_id)
        if line:
            args["line"] = line
        return {"name": frame.function, "cat": "python", "args": args}

    @staticmethod
    def _spans(profile: Profile, key: ThreadKey) -> Iterator[Tuple[int, int, int]]:
        """(frame_id, start_ns, end_ns) per frame activation, outer frames before inner."""
        open_frames: List[Tuple[int, int]] = []  # (frame_id, start), outermost first
        closed: List[Tuple[int, int, int, int]] = []  # (frame_id, start, end, depth)
        last_end = None
        for run in profile.timeline(key):
            stack = profile.stacks[run.stack_id]
            keep = 0
            if last_end is not None and run.start_ns <= last_end:
                while (keep < len(open_frames) and keep < len(stack)
                       and open_frames[keep][0] == stack[keep]):
                    keep += 1
            # close above the common prefix, innermost first
            while len(open_frames) > keep:
                frame_id, start = open_frames.pop()
                closed.append((frame_id, start, last_end, len(open_frames)))
            for frame_id in stack[keep:]:
                open_frames.append((frame_id, run.start_ns))
            last_end = run.end_ns
        while open_frames:
            frame_id, start = open_frames.pop()
            closed.append((frame_id, start, last_end, len(open_frames)))
        # viewers like parents first: by start, then outer before inner
        closed.sort(key=lambda span: (span[1], span[3]))
        return ((frame_id, start, end) for frame_id, start, end, _ in closed)
