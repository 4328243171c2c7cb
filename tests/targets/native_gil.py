"""Target: two pure-Python threads contending for the GIL (one of them waits at any moment).

argv: TRUTH_PATH.  Writes {"threads": {"spin1": tid, "spin2": tid}} once both spin.
"""
import json
import os
import sys
import threading

truth_path = sys.argv[1]
roles = {}
started = threading.Semaphore(0)


def spin(name):
    roles[name] = threading.get_native_id()
    started.release()
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


for name in ("spin1", "spin2"):
    threading.Thread(target=spin, args=(name,), daemon=True).start()
started.acquire()
started.acquire()
with open(truth_path + ".tmp", "w") as f:
    json.dump({"threads": roles, "pid": os.getpid()}, f)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
