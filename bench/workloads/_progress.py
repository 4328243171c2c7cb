"""Progress reporting shared by the sampling workloads.

A workload counts iterations of a fixed chunk of CPU work done at the leaf of
its stacks.  Every ``INTERVAL`` seconds one worker appends a line

    MONOTONIC_SECONDS TOTAL_ITERATIONS

to the file named by ``--progress`` (CLOCK_MONOTONIC is system-wide, so the
bench can cut the record at its own timestamps and compute iterations per
second inside any window).  With no ``--progress`` the rate is printed to
stdout once a second instead.  The first line doubles as the "ready" signal.
No extra thread is started: reporting happens on a worker's own stack, so the
sampled thread count and shapes stay exactly as described.
"""
import argparse
import os
import sys
import time

INTERVAL = 0.1


def parse_args(description, **defaults):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--progress", help="append 'monotonic_time iterations' lines to this file")
    parser.add_argument("--duration", type=float, default=0, help="stop after N seconds (0: run until killed)")
    for name, value in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    return parser.parse_args()


class Progress:
    """Counters per worker; ``tick`` is called by worker 0 after each iteration."""

    def __init__(self, path, workers=1, duration=0.0):
        self.counts = [0] * workers
        self.path = path
        self.started = time.monotonic()
        self.deadline = self.started + duration if duration else None
        self.next_report = self.started
        self.last = (self.started, 0)
        self.stream = open(path, "a", buffering=1) if path else None

    def report(self, now):
        total = sum(self.counts)
        if self.stream is not None:
            self.stream.write("%.6f %d\n" % (now, total))
        elif now - self.last[0] >= 1.0:
            sys.stdout.write("%.1f it/s\n" % ((total - self.last[1]) / (now - self.last[0])))
            sys.stdout.flush()
            self.last = (now, total)
        self.next_report = now + INTERVAL
        if self.deadline is not None and now >= self.deadline:
            os._exit(0)


def current_depth():
    """Python frames on the caller's stack, the caller included."""
    frame = sys._getframe(1)
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def spin(n=200):
    """The unit of CPU work (a few microseconds)."""
    x = 0
    for i in range(n):
        x += i * i
    return x
