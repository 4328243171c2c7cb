"""Threads that mostly stand still between two samples, for samples made from the last one.

A spinner runs a small function in a loop thirty frames deep (only its newest frames move),
another thread sleeps, another waits on an Event; with ``contend`` a second spinner fights
the first for the GIL (the holder changes, so do both stacks' tops).  The main thread prints
``ready`` and blocks reading stdin.
"""
import sys
import threading
import time


def spin(n=200):
    x = 0
    for i in range(n):
        x += i * i
    return x


def descend(levels, leaf):
    if levels > 0:
        return descend(levels - 1, leaf)
    return leaf()


def leaf_loop():
    while True:
        spin()


def spinner():
    descend(30, leaf_loop)


def sleeper():
    while True:
        time.sleep(0.2)


stop = threading.Event()
workers = [threading.Thread(target=spinner, name="spinner", daemon=True),
           threading.Thread(target=sleeper, name="sleeper", daemon=True),
           threading.Thread(target=stop.wait, name="waiter", daemon=True)]
if "contend" in sys.argv[1:]:
    workers.append(threading.Thread(target=spinner, name="spinner-2", daemon=True))
for w in workers:
    w.start()
time.sleep(0.3)
print("ready", flush=True)
sys.stdin.readline()
