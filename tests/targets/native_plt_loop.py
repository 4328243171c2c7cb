"""Target of the PLT e2e test: a thread that calls ``time.sleep`` in a tight loop, so the
interpreter goes through its PLT stub for the C library's sleep call (``clock_nanosleep@plt``
or ``select@plt``, by version) thousands of times a second; gdb stops it there.

argv: TRUTH_PATH.  Writes TRUTH as {"napper": native tid} once the thread runs.
"""
import json
import os
import sys
import threading
import time

truth_path = sys.argv[1]
started = threading.Event()


def nap():
    started.set()
    while True:
        time.sleep(0.0005)  # PLT-SLEEP


thread = threading.Thread(target=nap, name="napper", daemon=True)
thread.start()
started.wait()
with open(truth_path + ".tmp", "w") as fh:
    json.dump({"napper": thread.native_id}, fh)
os.rename(truth_path + ".tmp", truth_path)
threading.Event().wait()
