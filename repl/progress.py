"""A one-line progress display for long-running commands (``record``).

On a terminal the line is redrawn in place (``\\r`` + erase to end of line)
at most ``interval`` times a second; elsewhere (a pipe, a CI log) nothing is
drawn while running.  ``finish`` always prints one summary line, so logs keep
a record of what happened.
"""
from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional, TextIO


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "%.1fs" % seconds
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return "%d:%02d:%02d" % (hours, minutes, secs) if hours else "%d:%02d" % (minutes, secs)


def behind_warning(stats, rate: float) -> str:
    """What to say when the sampler cannot keep ``rate`` (py-spy says "behind in sampling")."""
    return ("warning: behind in sampling: %.0f of %g samples a second achieved (%d late, %d missed); "
            "results may be inaccurate: try a lower --rate" % (stats.achieved_rate(), rate, stats.late,
                                                               stats.missed))


def stats_text(stats) -> str:
    """``1234 samples, 0 errors, 3 late, 0 missed, 12.3s`` (+ processes when following several)."""
    text = "%d samples, %d errors, %d late, %d missed, %s" % (
        stats.samples, stats.errors, stats.late, getattr(stats, "missed", 0), format_seconds(stats.elapsed))
    if len(stats.pids) > 1:
        text += ", %d processes" % stats.processes
    return text


class Progress:
    def __init__(self, stream: TextIO, enabled: Optional[bool] = None, interval: float = 0.1,
                 prefix: str = "Recording"):
        self.stream = stream
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self.interval = interval
        self.prefix = prefix
        self._next = 0.0
        self._drawn = False

    def update(self, stats, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.interval
        try:
            self.stream.write("\r\x1b[K%s: %s (Ctrl-C to stop)" % (self.prefix, stats_text(stats)))
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):
            self.enabled = False

    def clear(self) -> None:
        if self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False

    def note(self, message: str) -> None:
        """A line of its own (a warning) above the progress line, which is redrawn next update."""
        self.clear()
        try:
            self.stream.write(message.rstrip("\n") + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self._next = 0.0

    def finish(self, message: str) -> None:
        """Erase the progress line and print the summary (always, terminal or not)."""
        self.clear()
        try:
            self.stream.write(message.rstrip("\n") + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
