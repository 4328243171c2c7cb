"""What a command runs against: the target, its latest snapshot, and where output goes.

The CLI builds a one-shot session; the REPL keeps one alive across commands
(selected thread and frame, background recordings).  Commands never attach
on their own: they ask the session, so every front end behaves the same.
"""
from __future__ import annotations

import sys
from typing import Optional, TextIO

from snapshot import SnapshotError, attach
from snapshot.model import Snapshot

from .commands.base import CommandError


class Session:
    def __init__(self, pid: Optional[int] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None):
        self.pid = pid
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.target = None
        self.snapshot: Optional[Snapshot] = None
        self.thread_index = 0
        self.frame_index = 0

    # -- target ----------------------------------------------------------------
    def get_target(self, pid: Optional[int] = None):
        if pid is not None and pid != self.pid:
            self.detach()
            self.pid = pid
        if self.pid is None:
            raise CommandError("no target: give --pid PID (or `attach PID` in the REPL)")
        if self.target is None:
            self.target = attach(self.pid)
        return self.target

    def detach(self) -> None:
        if self.target is not None:
            self.target.close()
        self.target = None
        self.snapshot = None

    def take_snapshot(self, locals: bool = True, blocking: bool = True, max_repr: int = 1024,
                      pid: Optional[int] = None) -> Snapshot:
        target = self.get_target(pid)
        self.snapshot = target.snapshot(locals=locals, blocking=blocking, max_repr=max_repr)
        return self.snapshot

    def close(self) -> None:
        self.detach()


__all__ = ["Session", "SnapshotError"]
