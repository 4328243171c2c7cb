"""Threads blocked inside C calls, with no Python frame of their own.

    python hang_c_call.py

``nap`` sleeps in time.sleep(3600); ``grab`` blocks in lock.acquire() on a
lock the main thread holds; the main thread then sleeps in
``threading.Event().wait()``.  Stdlib only.
"""
import threading
import time

held = threading.Lock()


def nap():
    time.sleep(3600)  # C-SLEEP


def grab():
    held.acquire()  # C-ACQUIRE


def main():
    print("c-call target starting", flush=True)
    held.acquire()
    threading.Thread(target=nap, name="napper", daemon=True).start()
    threading.Thread(target=grab, name="grabber", daemon=True).start()
    threading.Event().wait()  # MAIN-WAIT


if __name__ == "__main__":
    main()
