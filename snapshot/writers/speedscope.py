"""speedscope's JSON file format: one sampled profile per thread.

Frames are the profile's own frame table (shared by every thread).  Samples
come from each thread's timeline when it is complete, so speedscope's
"Time Order" view shows the program's phases, with a run of identical
stacks as one weighted sample; when the timeline was capped the aggregated
counts are written instead (same totals, no order).  Weights are seconds
when the sampling period is known, plain sample counts (unit ``none``)
otherwise.
"""
from __future__ import annotations

import json

from ..profile import Profile
from .base import Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from ..profile import ThreadKey
    from typing import Any, Dict, IO, List, Optional


SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def exporter() -> str:
    try:
        from importlib.metadata import version
        return "pyspy-repl@" + version("pyspy-repl")
    except Exception:  # not installed (running from a checkout)
        return "pyspy-repl"


class SpeedscopeWriter(Writer):
    name = "speedscope"
    extension = ".json"
    binary = False
    description = "speedscope JSON (https://www.speedscope.app)"

    def render(self, profile: Profile, stream: IO) -> None:
        stream.write(json.dumps(self.document(profile), separators=(",", ":")))

    def document(self, profile: Profile) -> Dict[str, Any]:
        period = profile.period_ns
        seconds = period / 1e9 if period else None
        frames = []
        for fid, frame in enumerate(profile.frames):
            entry: Dict[str, Any] = {"name": frame.function, "file": frame.filename}
            line = profile.display_line(fid)
            if line:
                entry["line"] = line
            frames.append(entry)
        several = len(profile.pids) > 1
        profiles: List[Dict[str, Any]] = []
        totals: List[int] = []
        grouped = profile.by_thread()
        for key, info in profile.threads.items():
            if profile.timeline_truncated:
                runs = [(stack_id, count) for stack_id, count in grouped.get(key, ())]
            else:
                runs = [(run.stack_id, run.samples) for run in profile.timeline(key)]
            samples = [list(profile.stacks[stack_id]) for stack_id, _ in runs]
            if seconds:
                weights: List[float] = [count * seconds for _, count in runs]
            else:
                weights = [count for _, count in runs]
            profiles.append({
                "type": "sampled",
                "name": self.profile_name(key, profile, several),
                "unit": "seconds" if seconds else "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            })
            totals.append(sum(count for _, count in runs))
        active = max(range(len(totals)), key=totals.__getitem__) if totals else 0
        return {
            "$schema": SCHEMA_URL,
            "shared": {"frames": frames},
            "profiles": profiles,
            "name": self.document_name(profile),
            "activeProfileIndex": active,
            "exporter": exporter(),
        }

    @staticmethod
    def profile_name(key: ThreadKey, profile: Profile, several_processes: bool) -> str:
        """py-spy's ``Thread TID "name"`` with the OS thread id (what ``dump`` prints; the
        Python id in hex where the OS id is unknown), prefixed by the process when there are several."""
        info = profile.threads[key]
        name = "Thread %d" % info.native_id if info.native_id else "Thread 0x%X" % info.thread_id
        if info.name:
            name += ' "%s"' % info.name
        if several_processes:
            name = "Process %d %s" % (info.pid, name)
        return name

    @staticmethod
    def document_name(profile: Profile) -> str:
        pids = profile.pids
        if not pids:
            return "pyspy-repl profile"
        commands: Dict[int, Optional[str]] = {}
        for info in profile.threads.values():
            if info.command_line:
                commands.setdefault(info.pid, info.command_line)
        first = pids[0]
        text = "pid %d" % first + (": " + commands[first] if first in commands else "")
        return text if len(pids) == 1 else "%s (+%d processes)" % (text, len(pids) - 1)
