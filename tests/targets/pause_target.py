"""A target that measures its own freezes: for the pause-length bench and tests.

    python pause_target.py READY_FILE [--threads N] [--depth D]

A heartbeat thread wakes every millisecond and keeps the longest gap between
two wake-ups; a pause of the process shows up as one long gap.  The main
thread serves commands on stdin: ``reset`` (forget the longest gap),
``gap`` (print it in milliseconds) and ``gap-over START END`` (the longest
gap overlapping that CLOCK_MONOTONIC window, in milliseconds).  N threads (default 10) wait on an event
with a few named locals each; with ``--depth D`` one more thread recurses D
frames deep, each frame holding locals (a list, a dict, a str).  READY_FILE
appears once every thread is in place.  Stdlib only.
"""
import os
import sys
import threading
import time

GAP = [0.0]
#: The latest 4,096 gaps longer than 2 ms, as (start, end) on CLOCK_MONOTONIC (shared by all processes).
GAPS = []
STOP = threading.Event()


def heartbeat():
    last = time.monotonic()
    while True:
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > GAP[0]:
            GAP[0] = now - last
        if now - last > 0.002:
            GAPS.append((last, now))
            del GAPS[:-4096]
        last = now


def waiter(n, ready):
    payload = {"n": n, "items": list(range(20)), "text": "waiter %d" % n}
    ready.release()
    STOP.wait()
    return payload


def deep(level, ready):
    items = [level, level + 1, "x" * 20]
    table = {"level": level, "items": items}
    text = "frame %d" % level
    if level > 0:
        return deep(level - 1, ready) + len(table) + len(text)
    ready.release()
    STOP.wait()
    return 0


def main():
    ready_path = sys.argv[1]
    args = sys.argv[2:]
    n = int(args[args.index("--threads") + 1]) if "--threads" in args else 10
    depth = int(args[args.index("--depth") + 1]) if "--depth" in args else 0
    sys.setrecursionlimit(max(1000, depth + 1000))
    threading.stack_size(256 << 20 if depth else 0)
    ready = threading.Semaphore(0)
    started = 0
    if depth:
        threading.Thread(target=deep, args=(depth, ready), name="deep", daemon=True).start()
        started += 1
    threading.stack_size(0)
    for i in range(n):
        threading.Thread(target=waiter, args=(i, ready), name="waiter-%d" % i, daemon=True).start()
        started += 1
    for _ in range(started):
        ready.acquire()
    threading.Thread(target=heartbeat, name="heartbeat", daemon=True).start()
    time.sleep(0.1)
    with open(ready_path + ".tmp", "w") as fh:
        fh.write("%d\n" % os.getpid())
    os.replace(ready_path + ".tmp", ready_path)
    for line in sys.stdin:
        word = line.strip()
        if word == "reset":
            GAP[0] = 0.0
            print("ok", flush=True)
        elif word == "gap":
            print("%.3f" % (GAP[0] * 1000), flush=True)
        elif word.startswith("gap-over "):
            # the longest gap overlapping [start, end] (monotonic seconds): the freeze a pause caused
            start, end = (float(x) for x in word.split()[1:3])
            over = [b - a for a, b in list(GAPS) if a <= end and b >= start]
            print("%.3f" % (max(over) * 1000 if over else 0.0), flush=True)
        elif word == "quit":
            break


if __name__ == "__main__":
    main()
