"""Target: two pure-Python threads contending for the GIL (one of them waits at any moment).

argv: TRUTH_PATH.  Writes {"threads": {"spin1": tid, "spin2": tid}} once both spin.
"""
import json
import os
import sys
import threading


def native_id():
    """The calling thread's OS id (``threading.get_native_id`` from 3.8, gettid before: 2.7-3.7)."""
    get = getattr(threading, "get_native_id", None)
    if get is not None:
        return get()
    import ctypes
    return ctypes.CDLL(None).syscall(186)  # SYS_gettid on x86-64


truth_path = sys.argv[1]
roles = {}
started = threading.Semaphore(0)


def spin(name):
    roles[name] = native_id()
    started.release()
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


for name in ("spin1", "spin2"):
    thread = threading.Thread(target=spin, args=(name,))
    thread.daemon = True
    thread.start()
started.acquire()
started.acquire()
with open(truth_path + ".tmp", "w") as f:
    json.dump({"threads": roles, "pid": os.getpid()}, f)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
