"""Target: two pure-Python spinners contending for the GIL beside threads blocked in other calls.

argv: TRUTH_PATH [late].  With ``late``, the workers start only once TRUTH_PATH.go exists
(a sampler already attached then meets threads that are new to it).  Writes {"pid", "threads": {role: native id}} once every thread is in place:
``spin1``/``spin2`` spin (at any moment one holds the GIL, the other waits for it), ``sleeper``
sleeps in ``time.sleep``, ``reader`` blocks in ``os.read`` on a pipe nobody writes, and the
main thread waits in ``Event.wait``.  Stdlib only; runs on 2.7 and 3.6+ (OS thread ids from
truthlib's ``native_id``: ``threading.get_native_id`` only exists from 3.8).
"""
import json
import os
import sys
import threading
import time

from truthlib import native_id

truth_path = sys.argv[1]
roles = {}
started = threading.Semaphore(0)


def spin(name):
    roles[name] = native_id()
    started.release()
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


def sleeper():
    roles["sleeper"] = native_id()
    started.release()
    while True:
        time.sleep(3600)


def reader(fd):
    roles["reader"] = native_id()
    started.release()
    os.read(fd, 1)


if sys.argv[2:] == ["late"]:
    open(truth_path + ".waiting", "w").close()
    while not os.path.exists(truth_path + ".go"):
        time.sleep(0.05)
read_end, write_end = os.pipe()
workers = [threading.Thread(target=spin, args=("spin1",)),
           threading.Thread(target=spin, args=("spin2",)),
           threading.Thread(target=sleeper),
           threading.Thread(target=reader, args=(read_end,))]
for w in workers:
    w.daemon = True  # (2.7's Thread takes no daemon argument)
    w.start()
for _ in workers:
    started.acquire()
roles["main"] = native_id()
with open(truth_path + ".tmp", "w") as f:
    json.dump({"threads": roles, "pid": os.getpid()}, f)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
