"""A thread whose newest Python frame is a generator's, waiting in a call the generator made.

The main thread prints ``ready`` and blocks reading stdin.
"""
import sys
import threading
import time


def slow():
    while True:
        yield time.sleep(1000)


def drive():
    for _ in slow():
        pass


threading.Thread(target=drive, name="driver", daemon=True).start()
time.sleep(0.3)
print("ready", flush=True)
sys.stdin.readline()
