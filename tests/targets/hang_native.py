"""A hang inside C: threads blocked in C functions called through ctypes, for ``watch --native``.

    python hang_native.py TRUTH_PATH LIBRARY_PATH

``mutex`` blocks in the gcc-built test library's ``nb_block_on_mutex``
(``pthread_mutex_lock`` on a mutex never released); ``nanosleep`` calls
libc's ``nanosleep`` directly; the main thread waits in ``Event.wait``.
SIGTERM is ignored, so the process outlives ``watch``'s SIGTERM until
its ``--kill-after`` SIGKILL: the test compares the report with gdb on
the same, still blocked, threads in between.  Writes TRUTH as
{"threads": {role: native tid}, "pid": pid} once every thread is about to block.
"""
import ctypes
import json
import os
import signal
import sys
import threading

truth_path, library = sys.argv[1], sys.argv[2]
lib = ctypes.CDLL(library)
libc = ctypes.CDLL(None)
roles = {}
ready = threading.Semaphore(0)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def get_native_id():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return libc.syscall(186)  # SYS_gettid on x86-64 (2.7 and 3.7)


def block_on_mutex():
    roles["mutex"] = get_native_id()
    ready.release()
    lib.nb_block_on_mutex()  # C-MUTEX


def c_sleep():
    roles["nanosleep"] = get_native_id()
    ready.release()
    while True:
        libc.nanosleep(ctypes.byref(Timespec(100000, 0)), None)  # C-NANOSLEEP


def main():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name, fn in (("mutex", block_on_mutex), ("nanosleep", c_sleep)):
        t = threading.Thread(target=fn, name=name)
        t.daemon = True
        t.start()
    for _ in range(2):
        ready.acquire()
    roles["main"] = get_native_id()
    tmp = truth_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"threads": roles, "pid": os.getpid()}, fh)
    os.rename(tmp, truth_path)
    sys.stdout.write("native hang target ready\n")
    sys.stdout.flush()
    threading.Event().wait()  # MAIN-WAIT


if __name__ == "__main__":
    main()
