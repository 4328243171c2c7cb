"""Target: a few threads asleep at different Python depths (stable native stacks).

argv: TRUTH_PATH.  Writes {"threads": {name: tid}} once every thread is about to sleep.
"""
import json
import os
import sys
import threading
import time

truth_path = sys.argv[1]
roles = {}
ready = threading.Semaphore(0)


def nest(depth, name):
    if depth:
        return nest(depth - 1, name)
    roles[name] = threading.get_native_id()
    ready.release()
    time.sleep(100000)


for depth in (0, 5, 20):
    threading.Thread(target=nest, args=(depth, "depth%d" % depth), daemon=True).start()
for _ in range(3):
    ready.acquire()
roles["main"] = threading.get_native_id()
with open(truth_path + ".tmp", "w") as f:
    json.dump({"threads": roles, "pid": os.getpid()}, f)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
