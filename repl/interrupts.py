"""Remembering a Ctrl-C that Python itself might drop.

Why: a ``KeyboardInterrupt`` raised while the interpreter runs a weakref
callback or a finaliser (the import system has both) is printed as "Exception
ignored" and dropped, so an early Ctrl-C could be lost and ``record`` would run
its whole duration.  The console entry points install ``remembering_handler``
first thing; it raises as Python's default does, and also sets a flag that
``check()`` turns into a ``KeyboardInterrupt`` at the next safe point (before
a command runs, before sampling starts).  Before that, ``repl.entry`` (the
console scripts' first module) holds a Ctrl-C by only remembering it;
``install`` takes that over.
"""
from __future__ import annotations

import _signal as signal  # not ``signal``: its enums cost start-up (as in repl/entry.py)
import sys

_seen = False


def remembering_handler(signum, frame):
    global _seen
    _seen = True
    raise KeyboardInterrupt


def install() -> None:
    """Replace Python's default SIGINT handler (only that one: an ignored SIGINT stays ignored),
    and keep the interpreter from printing a dropped interrupt as "Exception ignored" with a
    traceback: it is remembered, and ``check()`` acts on it."""
    global _seen
    early = sys.modules.get("repl.entry")  # the console entry's handler, which only remembers
    try:
        current = signal.getsignal(signal.SIGINT)
        if current is signal.default_int_handler or (early is not None and current is early.remember):
            signal.signal(signal.SIGINT, remembering_handler)
    except (ValueError, OSError):
        pass
    if early is not None and early.seen:
        _seen = True
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _seen:
            return
        previous(unraisable)

    sys.unraisablehook = hook


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C was seen and not acted on yet."""
    global _seen
    if _seen:
        _seen = False
        raise KeyboardInterrupt


def acted() -> None:
    """The interrupt was handled (its KeyboardInterrupt reached a handler)."""
    global _seen
    _seen = False
