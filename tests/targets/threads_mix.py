"""One busy thread and two idle ones: for --idle / --gil filtering.

    python threads_mix.py [SECONDS]

The main thread spins in ``busy_loop``; ``sleeper-0`` and ``sleeper-1`` sit
in ``time.sleep`` inside ``idle_wait``.  Exits after SECONDS (default 30).
"""
import sys
import threading
import time

_clock = getattr(time, "perf_counter", time.time)  # 2.7 has no perf_counter


def idle_wait():
    while True:
        time.sleep(0.5)


def busy_loop(seconds):
    end = _clock() + seconds
    x = 0
    while _clock() < end:
        x = (x * 31 + 7) & 0xFFFF


if __name__ == "__main__":
    for i in range(2):
        t = threading.Thread(target=idle_wait, name="sleeper-%d" % i)
        t.daemon = True
        t.start()
    busy_loop(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0)
