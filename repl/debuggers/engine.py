"""The engine on a debugger's ``Process``: ``make_target(process)`` is ``Target(process)``.

Kept as the one place the debugger front ends build their target, so they
import nothing of the engine until a command needs it.
"""
from __future__ import annotations


def make_target(process):
    """A ``Target`` reading ``process`` (which the debugger has stopped)."""
    from snapshot.target import Target
    return Target(process)
