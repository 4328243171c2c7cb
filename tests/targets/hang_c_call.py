"""Threads blocked inside C calls, with no Python frame of their own.

    python hang_c_call.py

``nap`` sleeps in time.sleep(3600); ``grab`` blocks in lock.acquire() on a
lock the main thread holds; the main thread then sleeps in
``threading.Event().wait()``.  Stdlib only; runs on 2.7 and 3.6+.
"""
from __future__ import print_function

import sys
import threading
import time

held = threading.Lock()


def nap():
    time.sleep(3600)  # C-SLEEP


def grab():
    held.acquire()  # C-ACQUIRE


def main():
    print("c-call target starting")
    sys.stdout.flush()
    held.acquire()
    for target, name in ((nap, "napper"), (grab, "grabber")):
        thread = threading.Thread(target=target, name=name)
        thread.daemon = True  # (2.7's Thread takes no daemon argument)
        thread.start()
    threading.Event().wait()  # MAIN-WAIT


if __name__ == "__main__":
    main()
