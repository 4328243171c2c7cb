"""Target: a few threads asleep at different Python depths (stable native stacks).

argv: TRUTH_PATH.  Writes {"threads": {name: tid}} once every thread is about to sleep.
"""
import json
import os
import sys
import threading
import time


def native_id():
    """The calling thread's OS id (``threading.get_native_id`` from 3.8, gettid before: 2.7-3.7)."""
    get = getattr(threading, "get_native_id", None)
    if get is not None:
        return get()
    import ctypes
    return ctypes.CDLL(None).syscall(186)  # SYS_gettid on x86-64

truth_path = sys.argv[1]
roles = {}
ready = threading.Semaphore(0)


def nest(depth, name):
    if depth:
        return nest(depth - 1, name)
    roles[name] = native_id()
    ready.release()
    time.sleep(100000)


for depth in (0, 5, 20):
    thread = threading.Thread(target=nest, args=(depth, "depth%d" % depth))
    thread.daemon = True
    thread.start()
for _ in range(3):
    ready.acquire()
roles["main"] = native_id()
with open(truth_path + ".tmp", "w") as f:
    json.dump({"threads": roles, "pid": os.getpid()}, f)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
