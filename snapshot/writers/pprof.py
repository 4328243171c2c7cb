"""pprof's gzipped ``profile.proto``, encoded by hand.

One pprof sample per (thread, stack) with values ``[samples, samples x
period]`` and thread labels; one location per distinct frame (function +
line), one function per (name, file), one mapping per binary of the
sampled processes (the main executable first: pprof's headline names it).  Locations are listed leaf first, as
pprof requires.  Thread and process roots are labels here, not frames:
pprof tools group by label (``-tagroot``/``-tagfocus``) natively.

Field numbers are those of perftools.profiles.Profile (profile.proto).
"""
from __future__ import annotations

import gzip

from ..profile import Profile
from ._protobuf import bytes_field, int_field, message_field, packed_field
from .base import Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, IO, List, Tuple


class _Strings:
    """pprof's string table: index 0 is always the empty string."""

    def __init__(self) -> None:
        self.table: List[str] = [""]
        self._index: Dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.table)
            self.table.append(text)
        return index


def _value_type(strings: _Strings, kind: str, unit: str) -> bytes:
    return int_field(1, strings(kind)) + int_field(2, strings(unit))


def _label(strings: _Strings, key: str, text: str = "", number: int = 0, unit: str = "") -> bytes:
    return (int_field(1, strings(key)) + int_field(2, strings(text) if text else 0)
            + int_field(3, number) + int_field(4, strings(unit) if unit else 0))


def encode_profile(profile: Profile) -> bytes:
    """The uncompressed Profile message."""
    strings = _Strings()
    period = profile.period_ns or 0
    time_kind = profile.time_kind
    out = [message_field(1, _value_type(strings, "samples", "count")),
           message_field(1, _value_type(strings, time_kind, "nanoseconds"))]

    several = len(profile.pids) > 1
    for (key, stack_id), count in profile.counts.items():
        stack = profile.stacks[stack_id]
        if not stack:
            continue
        info = profile.threads[key]
        labels = [_label(strings, "thread_id", number=info.thread_id)]
        if info.native_id is not None:
            labels.append(_label(strings, "native_id", number=info.native_id))
        if info.name:
            labels.append(_label(strings, "thread_name", text=info.name))
        if several or profile.options.subprocesses:
            labels.append(_label(strings, "pid", number=info.pid))
        body = (packed_field(1, (frame_id + 1 for frame_id in reversed(stack)))
                + packed_field(2, (count, count * period))
                + b"".join(message_field(3, label) for label in labels))
        out.append(message_field(2, body))

    mappings = _mappings(profile)
    for index, m in enumerate(mappings, 1):
        symbolized = index == 1  # Python code runs in the interpreter: its frames come named
        out.append(message_field(3, int_field(1, index) + int_field(2, m.start) + int_field(3, m.end)
                                 + int_field(4, m.file_offset) + int_field(5, strings(m.path))
                                 + int_field(6, strings(m.build_id) if m.build_id else 0)
                                 + int_field(7, symbolized) + int_field(8, symbolized)
                                 + int_field(9, symbolized)))

    functions: Dict[Tuple[str, str], int] = {}
    function_lines: Dict[Tuple[str, str], int] = {}
    for frame_id, frame in enumerate(profile.frames):
        place = (frame.function, frame.filename)
        function_id = functions.setdefault(place, len(functions) + 1)
        line = profile.display_line(frame_id)
        if profile.options.function:
            function_lines[place] = line
        line_msg = int_field(1, function_id) + int_field(2, line)
        mapping_id, address = _place(mappings, frame)
        out.append(message_field(4, int_field(1, frame_id + 1) + int_field(2, mapping_id)
                                 + int_field(3, address) + message_field(4, line_msg)))
    for (function, filename), function_id in functions.items():
        name = strings(function)
        out.append(message_field(5, int_field(1, function_id) + int_field(2, name) + int_field(3, name)
                                 + int_field(4, strings(filename))
                                 + int_field(5, function_lines.get((function, filename), 0))))

    tail = (int_field(9, profile.first_ns or 0) + int_field(10, profile.duration_ns)
            + message_field(11, _value_type(strings, time_kind, "nanoseconds")) + int_field(12, period))
    # the string table goes last: every index above has been handed out by now
    table = b"".join(bytes_field(6, text.encode("utf-8")) for text in strings.table)
    return b"".join(out) + table + tail


def _mappings(profile: Profile) -> list:
    """The profile's binaries, main executable first; without any, one named after the command
    (pprof names the profile by its first mapping and warns when it has none)."""
    if profile.mappings:
        return list(profile.mappings)
    from ..profile import ProfileMapping
    command = next((info.command_line for info in profile.threads.values() if info.command_line), "")
    return [ProfileMapping(0, 0, 0, 0, command.split()[0] if command else "python")]


def _place(mappings: list, frame) -> Tuple[int, int]:
    """(mapping id, address) of a frame: a native frame's own binary, else the interpreter's."""
    address = getattr(frame, "address", None) or 0
    if address:
        for index, m in enumerate(mappings, 1):
            if m.start <= address < m.end:
                return index, address
    return 1, address


class PprofWriter(Writer):
    name = "pprof"
    extension = ".pb.gz"
    binary = True
    description = "pprof profile.proto, gzipped (go tool pprof, pprof.me)"

    def render(self, profile: Profile, stream: IO) -> None:
        stream.write(gzip.compress(encode_profile(profile), mtime=0))
