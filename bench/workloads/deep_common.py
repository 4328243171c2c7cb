"""Recursion to an exact depth, then CPU work at the leaf forever."""
import time

from _progress import Progress, current_depth, spin


def descend(levels, leaf):
    if levels > 0:
        return descend(levels - 1, leaf)
    return leaf()


def run_at_depth(depth, progress: Progress, index=0):
    """Recurse so that the innermost frame (``spin``) is exactly ``depth`` frames deep."""
    here = current_depth()  # frames from the bottom of the stack up to run_at_depth included
    # innermost stack: here + `levels` descend frames + leaf + spin
    levels = depth - here - 2
    counts = progress.counts
    reporter = index == 0

    def leaf():
        monotonic = time.monotonic
        while True:
            spin()
            counts[index] += 1
            if reporter:
                now = monotonic()
                if now >= progress.next_report:
                    progress.report(now)
    # descend(levels - 1) adds `levels` descend frames; leaf and spin add two more.
    return descend(levels - 1, leaf)
