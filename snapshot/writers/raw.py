"""Collapsed stacks: ``outer;middle;inner COUNT`` per line, outermost first.

The interchange format of flamegraph.pl, inferno and speedscope's importer,
and py-spy's ``--format raw``.  Lines are sorted so two recordings of the
same program diff cleanly.
"""
from __future__ import annotations


from ..profile import Profile
from .base import Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import IO


class RawWriter(Writer):
    name = "raw"
    extension = ".txt"
    binary = False
    description = "collapsed stacks (flamegraph.pl / inferno input)"

    def render(self, profile: Profile, stream: IO) -> None:
        lines = sorted(";".join(_clean(label) for label in path) + " %d\n" % count
                       for path, count in profile.collapsed().items())
        stream.writelines(lines)


def _clean(label: str) -> str:
    """A label may not contain the separator or a newline, or the line would not parse back."""
    return label.replace(";", ":").replace("\n", " ")
