"""One busy thread and two idle ones: for --idle / --gil filtering.

    python threads_mix.py [SECONDS] [TRUTH]

The main thread spins in ``busy_loop``; ``sleeper-0`` and ``sleeper-1`` sit
in ``time.sleep`` inside ``idle_wait``.  Exits after SECONDS (default 30).
TRUTH (if given) is written, atomically, once both sleepers run and before the
spin starts: {"pid", "threads": [{"name", "ident", "native_id"}]}.  Runs on
2.7 and 3.6+ (stdlib only; OS ids from truthlib's ``native_id``).
"""
import json
import os
import sys
import threading
import time

from truthlib import native_id

_clock = getattr(time, "perf_counter", time.time)  # 2.7 has no perf_counter
THREADS = []  # (name, ident, native id) of each thread, reported by itself
REPORTED = threading.Semaphore(0)


def report():
    me = threading.current_thread()
    THREADS.append({"name": me.name, "ident": me.ident, "native_id": native_id()})
    REPORTED.release()


def idle_wait():
    report()
    while True:
        time.sleep(0.5)  # IDLE-SLEEP


def busy_loop(seconds):
    end = _clock() + seconds
    x = 0
    while _clock() < end:  # BUSY-WHILE
        x = (x * 31 + 7) & 0xFFFF  # BUSY-BODY


def write_truth(path):
    for _ in range(2):
        REPORTED.acquire()
    report()
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(json.dumps({"pid": os.getpid(), "threads": THREADS}))
    os.rename(tmp, path)


if __name__ == "__main__":
    for i in range(2):
        t = threading.Thread(target=idle_wait, name="sleeper-%d" % i)
        t.daemon = True
        t.start()
    if len(sys.argv) > 2:
        write_truth(sys.argv[2])
    busy_loop(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0)  # MAIN-CALL
