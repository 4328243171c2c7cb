"""Process supervision for the front ends: start commands, forward signals, end process trees.

The engine only reads processes; everything that starts, signals or kills
one lives here:

* ``Child``: a command we started (``record -- CMD``, ``top -- CMD``, the
  REPL's ``-- CMD``, ``watch -- CMD``): reaped on ``alive()``, stopped with
  SIGTERM then SIGKILL by ``stop()`` when we are done with it;
* ``forward_signals(child)``: SIGTERM and SIGHUP sent to us reach the child
  (Ctrl-C reaches it directly through the terminal's process group);
* ``terminate_tree(root)``: SIGTERM to a whole process tree, SIGKILL after a
  grace period to what is left (a timed-out ``watch``, a hung pytest);
* ``exit_status(status)``: a child's status as a shell reports it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from layouts.records import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple


class Child:
    """A command we started; ``OSError`` from ``Popen`` reaches the caller (not found, not executable)."""

    def __init__(self, command: Sequence[str]):
        # Popen returns once exec has succeeded (it waits on a close-on-exec pipe),
        # so the pid already runs the new program.
        self.command = list(command)
        self.proc = subprocess.Popen(self.command)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        """True while it runs (polling also reaps it once it exited)."""
        return self.proc.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll()

    def wait(self, timeout: Optional[float] = None) -> int:
        """Its status; ``subprocess.TimeoutExpired`` when it still runs after ``timeout``."""
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 2.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns its status (None if it survived)."""
        if self.alive():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    self.proc.send_signal(sig)
                except OSError:
                    break
                try:
                    self.proc.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return self.proc.poll()

    def describe(self, width: int = 60) -> str:
        return " ".join(map(str, self.command))[:width]


@contextlib.contextmanager
def forward_signals(child: Child) -> Iterator[None]:
    """While inside: SIGTERM/SIGHUP to us go to ``child``; SIGINT is ignored here.

    The child is in our foreground process group, so a terminal's Ctrl-C
    reaches it directly; we must not die of it before the child does.  Only
    the main thread can set handlers: elsewhere this does nothing.
    """
    def forward(signum, _frame):
        if child.alive():
            try:
                child.proc.send_signal(signum)
            except OSError:
                pass

    old = {}
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        try:
            old[signum] = signal.signal(signum, signal.SIG_IGN if signum == signal.SIGINT else forward)
        except (ValueError, OSError):   # not the main thread
            pass
    try:
        yield
    finally:
        for signum, handler in old.items():
            try:
                signal.signal(signum, handler)
            except (ValueError, OSError, TypeError):
                pass


def exit_status(status: int) -> int:
    """A child's status as a shell reports it: N, or 128+SIG when it died of signal SIG."""
    return 128 - status if status < 0 else status


@dataclass
class Termination:
    terminated: List[int] = field(default_factory=list)   # exited after SIGTERM
    killed: List[int] = field(default_factory=list)       # needed SIGKILL
    survivors: List[int] = field(default_factory=list)    # still there after SIGKILL (should not happen)

    def describe(self) -> str:
        text = "sent SIGTERM to %d process(es)" % (len(self.terminated) + len(self.killed) + len(self.survivors))
        if self.killed:
            text += "; %d ignored it and got SIGKILL: pid %s" % (len(self.killed), ", ".join(map(str, self.killed)))
        if self.survivors:
            text += "; still alive: %s" % ", ".join(map(str, self.survivors))
        return text


def terminate_tree(root_pid: int, kill_after: float = 5.0, exclude: Iterable[int] = (),
                   also: Optional[Dict[int, Optional[float]]] = None) -> Termination:
    """SIGTERM every process of the tree, SIGKILL those still alive after ``kill_after`` s.

    ``also`` adds pids seen earlier (pid -> create time), so a process that was
    reparented away from the tree (a daemonized grandchild) is not forgotten;
    the create time guards against a reused pid.
    """
    import psutil
    from snapshot.hang import process_tree
    skip = set(exclude) | {os.getpid()}
    procs = {p.pid: p for p in process_tree(root_pid, skip)}
    for pid, created in (also or {}).items():
        if pid in procs or pid in skip:
            continue
        try:
            proc = psutil.Process(pid)
            if created is None or abs(proc.create_time() - created) < 0.01:
                procs[pid] = proc
        except psutil.Error:
            pass
    result = Termination()
    alive = []
    for proc in procs.values():
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.Error:
            pass
    gone, alive = _wait_gone(alive, kill_after)
    result.terminated = sorted(p.pid for p in gone)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    gone, alive = _wait_gone(alive, 5.0)
    result.killed = sorted(p.pid for p in gone)
    result.survivors = sorted(p.pid for p in alive)
    return result


def _wait_gone(procs: List[Any], timeout: float) -> Tuple[List[Any], List[Any]]:
    """Wait until each process exited (a zombie counts as exited; our own children are reaped)."""
    import psutil
    deadline = time.monotonic() + max(0.0, timeout)
    alive = list(procs)
    gone: List[Any] = []
    while True:
        still = []
        for proc in alive:
            try:
                os.waitpid(proc.pid, os.WNOHANG)   # reap it if it is our child
            except ChildProcessError:
                pass
            except OSError:
                pass
            try:
                done = not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
            except psutil.Error:
                done = True
            (gone if done else still).append(proc)
        alive = still
        if not alive or time.monotonic() >= deadline:
            return gone, alive
        time.sleep(0.05)
