"""The figures ``top`` shows: counts per function (or line) and the header and rows drawn from
them, the same for the full-screen view (``top_screen``) and the plain table of a pipe.

Why its own module: both views import it, and the full-screen one is imported only when a
screen is drawn; keeping the model here lets neither view import the other.
"""
from __future__ import annotations


from ..progress import format_seconds

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Tuple


COLUMNS = ("%Own", "%Total", "OwnTime", "TotalTime")
Key = tuple  # (function, filename), or (function, filename, line) with line numbers on


class TopStats:
    """Own and total counts per function: since the last reset, for the interval being sampled
    (``*_now``) and for the last complete interval (``*_shown``, what the percentages show).

    The sink (``add``) and the display may run in different threads: the caller holds one lock
    around both."""

    def __init__(self, full_filenames: bool = False, line_numbers: bool = False):
        self.full_filenames = full_filenames
        #: Aggregate by (function, file, line) instead of by function (key ``L``).
        self.line_numbers = line_numbers
        self.reset()

    def reset(self) -> None:
        """Forget every count (key ``R``)."""
        self.own: Dict[Key, int] = {}
        self.total: Dict[Key, int] = {}
        self.own_now: Dict[Key, int] = {}
        self.total_now: Dict[Key, int] = {}
        self.own_shown: Dict[Key, int] = {}
        self.total_shown: Dict[Key, int] = {}
        self.lines: Dict[Key, int] = {}
        self.labels: Dict[Key, str] = {}

    def add(self, sample) -> None:
        frames = sample.frames
        if not frames:
            return
        lines = self.lines
        seen = set()
        own = True
        by_line = self.line_numbers
        for frame in frames:
            key = (frame.function, frame.filename, frame.line) if by_line else (frame.function, frame.filename)
            if key not in lines:
                lines[key] = frame.line
            if own:
                self.own[key] = self.own.get(key, 0) + 1
                self.own_now[key] = self.own_now.get(key, 0) + 1
                own = False
            if key in seen:
                continue  # recursion: count a function once per stack
            seen.add(key)
            self.total[key] = self.total.get(key, 0) + 1
            self.total_now[key] = self.total_now.get(key, 0) + 1

    def new_interval(self) -> None:
        """The interval being sampled becomes the one shown; a new one starts."""
        self.own_shown = self.own_now
        self.total_shown = self.total_now
        self.own_now = {}
        self.total_now = {}

    def label(self, key: Key) -> str:
        text = self.labels.get(key)
        if text is None:
            from snapshot.model import short_filename
            function, filename = key[0], key[1]
            name = filename if self.full_filenames else short_filename(filename)
            line = key[2] if len(key) > 2 else self.lines.get(key) or 0
            text = "%s (%s:%d)" % (function, name, line) if line else "%s (%s)" % (function, name)
            self.labels[key] = text
        return text

    def rows(self, sort: int, interval_passes: int, rate: float) -> List[Tuple[float, float, float, float, str]]:
        passes = max(1, interval_passes)
        result = []
        for key, total in self.total.items():
            own = self.own.get(key, 0)
            result.append((100.0 * self.own_shown.get(key, 0) / passes, 100.0 * self.total_shown.get(key, 0) / passes,
                           own / rate, total / rate, self.label(key)))
        result.sort(key=lambda row: (-row[sort], -row[3], row[4]))
        return result


def fmt_time(seconds: float) -> str:
    if seconds < 100:
        return "%.2fs" % seconds
    return format_seconds(seconds)


HELP = (
    "  1 2 3 4   sort by %Own, %Total, OwnTime, TotalTime",
    "  L         toggle line numbers (aggregate by line instead of by function)",
    "  R         reset the counts",
    "  ?         show or hide this help (Esc or any other key hides it too)",
    "  q Ctrl-C  quit (the process goes on running, untraced)",
)


class TopView:
    """Header and rows from the counts; the same text for the terminal and the pipe.

    The percentages are those of the last complete interval (``next_interval``), so a redraw
    between two refreshes (a key, a resize) shows the same figures; counts and times run from
    the last reset."""

    def __init__(self, target, stats: TopStats, rate: float, title: str):
        self.target = target
        self.stats = stats
        self.rate = rate
        self.title = title
        self.sort = 0
        self.show_help = False
        self._last = None   # SamplerStats copy at the previous refresh
        self._base = None   # ... at the last reset
        self._base_elapsed = 0.0
        self._shown = (0, 0, 0)  # passes, GIL passes, active thread samples of the interval shown

    def handle_key(self, key: str, sampler_stats=None) -> Optional[str]:
        """React to one key: "quit", "redraw", or None (not ours)."""
        if len(key) != 1:
            key = "\x00"  # a special key (arrows, F-keys): only closes the help
        if key in "qQ\x03":
            return "quit"
        if key in "1234":
            self.sort = int(key) - 1
        elif key == "?":
            self.show_help = not self.show_help
        elif key in "lL":
            self.stats.line_numbers = not self.stats.line_numbers
            self.reset(sampler_stats)  # counts by function and by line do not mix
        elif key in "rR":
            self.reset(sampler_stats)
        elif self.show_help:
            self.show_help = False  # any other key closes the help
        else:
            return None
        return "redraw"

    def reset(self, sampler_stats=None) -> None:
        """Counts, times and the header's samples start again from now."""
        self.stats.reset()
        self._shown = (0, 0, 0)
        if sampler_stats is not None:
            self._last = sampler_stats.copy()
            self._base = self._last
            self._base_elapsed = sampler_stats.elapsed

    def interval(self, sampler_stats):
        last = self._last
        passes = sampler_stats.passes - (last.passes if last else 0)
        gil = sampler_stats.gil_passes - (last.gil_passes if last else 0)
        active = sampler_stats.threads_active - (last.threads_active if last else 0)
        return passes, gil, active

    def lines(self, sampler_stats, width: int, height: Optional[int]) -> List[str]:
        passes, gil, active = self._shown
        denominator = max(1, passes)
        base = self._base
        header = [
            self.title[:width],
            ("Total Samples %d | GIL: %.2f%% | Active: %.2f%% | Threads: %d | Errors: %d | Late: %d | %s"
             % (sampler_stats.passes - (base.passes if base else 0), 100.0 * gil / denominator,
                100.0 * active / denominator, sampler_stats.threads,
                sampler_stats.errors - (base.errors if base else 0), sampler_stats.late - (base.late if base else 0),
                format_seconds(sampler_stats.elapsed - self._base_elapsed)))[:width],
            "",
        ]
        names = []
        for index, name in enumerate(COLUMNS):
            mark = "*" if index == self.sort else " "
            names.append("%s%s" % (mark, name))
        head = "%8s %8s %9s %10s  %s" % (names[0], names[1], names[2], names[3], "Function (filename:line)")
        rows = self.stats.rows(self.sort, passes, self.rate)
        limit = len(rows) if height is None else max(0, height - len(header) - 1)
        body = ["%7.2f%% %7.2f%% %9s %10s  %s" % (own, total, fmt_time(own_t), fmt_time(total_t), label)
                for own, total, own_t, total_t, label in rows[:limit]]
        return header + [head[:width]] + [line[:width] for line in body]

    def next_interval(self, sampler_stats) -> None:
        """End the interval being sampled: its figures become the ones shown."""
        self._shown = self.interval(sampler_stats)
        self._last = sampler_stats.copy()
        self.stats.new_interval()


__all__ = ["COLUMNS", "HELP", "TopStats", "TopView", "fmt_time"]
