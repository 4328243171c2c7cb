"""A multiprocessing pool at work: children busy in ``child_work``, the parent waits.

    python mp_pool.py SECONDS [--ready FILE]

Two pool workers each run ``child_work`` (a pure-Python spin) for SECONDS;
the parent blocks in ``Pool.map``.  FILE (if given) is written by each
worker when it starts (one line with its pid).  Stdlib only.
"""
import multiprocessing
import os
import sys
import time

_clock = getattr(time, "perf_counter", time.time)  # 2.7 has no perf_counter


def child_work(args):
    seconds, ready = args
    if ready:
        with open(ready, "a") as fh:
            fh.write("%d\n" % os.getpid())
    end = _clock() + seconds
    x = 0
    while _clock() < end:
        x = (x * 31 + 7) & 0xFFFF
    return x


def main():
    args = sys.argv[1:]
    ready = None
    if "--ready" in args:
        i = args.index("--ready")
        ready = args[i + 1]
        del args[i:i + 2]
    seconds = float(args[0]) if args else 3.0
    pool = multiprocessing.Pool(2)  # 2.7's Pool is no context manager
    try:
        pool.map(child_work, [(seconds, ready)] * 2, chunksize=1)
    finally:
        pool.close()
        pool.join()


if __name__ == "__main__":
    main()
