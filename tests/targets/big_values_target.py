"""A thread holding a 100,000-item list, a 100,000-item tuple and an instance with attributes.

    python big_values_target.py READY_FILE

READY_FILE appears once the thread "holder" waits in ``hold``.  Stdlib only.
"""
import os
import sys
import threading
import time


class Box:
    def __init__(self):
        self.alpha = 1
        self.beta = "two"


def hold(ready_path, event):
    lst = list(range(100000))
    tup = tuple(range(100000))
    obj = Box()
    with open(ready_path + ".tmp", "w") as fh:
        fh.write("%d\n" % os.getpid())
    os.replace(ready_path + ".tmp", ready_path)
    while not event.is_set():
        time.sleep(3600)
    return lst, tup, obj


if __name__ == "__main__":
    done = threading.Event()
    t = threading.Thread(target=hold, args=(sys.argv[1], done), name="holder", daemon=True)
    t.start()
    t.join()
