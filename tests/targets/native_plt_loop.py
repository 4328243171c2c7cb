"""Target of the PLT e2e test: a thread that calls ``time.sleep`` in a tight loop, so the
interpreter goes through its PLT stub for the C library's sleep call (``clock_nanosleep@plt``
or ``select@plt``, by version) thousands of times a second; gdb stops it there.

argv: TRUTH_PATH.  Writes TRUTH as {"napper": native tid} once the thread runs.
"""
import ctypes
import json
import os
import sys
import threading
import time

truth_path = sys.argv[1]
started = threading.Event()
ids = {}


def nap():
    # the OS thread id (2.7 and 3.7 have no threading.get_native_id: SYS_gettid on x86-64)
    ids["napper"] = threading.get_native_id() if hasattr(threading, "get_native_id") \
        else ctypes.CDLL(None).syscall(186)
    started.set()
    while True:
        time.sleep(0.0005)  # PLT-SLEEP


thread = threading.Thread(target=nap, name="napper")
thread.daemon = True
thread.start()
started.wait()
with open(truth_path + ".tmp", "w") as fh:
    json.dump(ids, fh)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
