"""A busy target that proves it keeps running: for the many-dumps and pause-safety tests.

    python heartbeat_target.py HEARTBEAT_FILE [--threads N]

The main thread spins in pure Python (it holds the GIL most of the time) and
counts; a heartbeat thread rewrites HEARTBEAT_FILE with the count every 20 ms
(the file appears once everything runs).  N extra threads (default 3) sleep
in time.sleep.  If the process is ever left stopped or the main thread stops
making progress, the number in the file stops growing.  Stdlib only.
"""
import os
import sys
import threading
import time

COUNTER = [0]


def heartbeat(path):
    tmp = path + ".tmp"
    while True:
        with open(tmp, "w") as fh:
            fh.write("%d\n" % COUNTER[0])
        os.replace(tmp, path)
        time.sleep(0.02)


def sleeper(n):
    while True:
        time.sleep(0.5 + n / 10.0)


def spin(x):
    return (x * 31 + 7) & 0xFFFF


def busy_main():
    x = 0
    while True:
        for _ in range(1000):
            x = spin(x)
        COUNTER[0] += 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    n_threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 3
    for i in range(n_threads):
        threading.Thread(target=sleeper, args=(i,), name="sleeper-%d" % i, daemon=True).start()
    threading.Thread(target=heartbeat, args=(os.path.abspath(sys.argv[1]),), name="heartbeat", daemon=True).start()
    busy_main()
