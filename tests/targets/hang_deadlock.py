"""Two threads deadlocked over two locks; the main thread joins them forever.

    python hang_deadlock.py [READY_FILE]

worker-a takes lock_a then lock_b (in ``transfer_a_to_b``), worker-b takes
lock_b then lock_a (in ``transfer_b_to_a``); a barrier makes sure each holds
its first lock before asking for the second, so the deadlock is certain
(two events, not ``threading.Barrier``, which 2.7 lacks).
READY_FILE (optional) is written once both threads are about to block.
Stdlib only; runs on 2.7 and 3.6+.
"""
from __future__ import print_function

import os
import sys
import threading

lock_a = threading.Lock()
lock_b = threading.Lock()
a_holds = threading.Event()
b_holds = threading.Event()


def transfer_a_to_b():
    with lock_a:
        a_holds.set()
        b_holds.wait()
        with lock_b:  # DEADLOCK-A
            pass


def transfer_b_to_a():
    with lock_b:
        b_holds.set()
        a_holds.wait()
        lock_a.acquire()  # DEADLOCK-B
        lock_a.release()


def main(ready):
    print("deadlock target starting")
    sys.stdout.flush()
    a = threading.Thread(target=transfer_a_to_b, name="worker-a")
    b = threading.Thread(target=transfer_b_to_a, name="worker-b")
    a.start()
    b.start()
    if ready:
        with open(ready, "w") as fh:
            fh.write("%d\n" % os.getpid())
    a.join()  # MAIN-JOIN
    b.join()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
