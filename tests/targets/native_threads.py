"""Target of the native-frame tests: threads blocked in C in every way the tests compare with gdb.

argv: TRUTH_PATH LIBRARY_PATH [--busy]
Writes TRUTH as {"threads": {role: native tid}} once every thread is about
to block; the roles are the test's names for what each thread does.
Runs unchanged on CPython 2.7 and 3.6+ (OS thread ids from gettid before 3.8,
the signal mask through libc before 3.3).
"""
import ctypes
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import zlib

truth_path, library = sys.argv[1], sys.argv[2]
busy = "--busy" in sys.argv
lib = ctypes.CDLL(library)
libc = ctypes.CDLL(None)
roles = {}
ready = threading.Semaphore(0)
forever = threading.Event()
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)


def native_id():
    """The calling thread's OS id (``threading.get_native_id`` from 3.8, gettid before)."""
    get = getattr(threading, "get_native_id", None)
    return get() if get is not None else libc.syscall(186)  # SYS_gettid on x86-64


def block_sigusr1():
    """Only the "signal" thread takes SIGUSR1: every thread started after this inherits the mask."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        return
    mask = (ctypes.c_ulong * 16)()          # sigset_t: 1024 bits
    mask[0] = 1 << (signal.SIGUSR1 - 1)
    libc.pthread_sigmask(0, mask, None)     # SIG_BLOCK


def role(name):
    def wrap(fn):
        def run():
            roles[name] = native_id()
            ready.release()
            fn()
        thread = threading.Thread(target=run, name=name)
        thread.daemon = True
        return thread
    return wrap


@role("sleep")
def sleeper():
    time.sleep(100000)


@role("select")
def selecter():
    r, w = os.pipe()
    select.select([r], [], [], 100000)


held = threading.Lock()
held.acquire()


@role("lock")
def locker():
    held.acquire()


@role("recv")
def receiver():
    a, b = socket.socketpair()
    a.recv(10)


def compare(x, y):
    forever.wait()   # blocks inside qsort's callback: Python -> C -> Python -> C
    return 0


COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))(compare)


@role("qsort")
def sorter():
    values = (ctypes.c_int * 4)(4, 3, 2, 1)
    libc.qsort(values, 4, ctypes.sizeof(ctypes.c_int), COMPARE)


@role("mutex")
def mutexer():
    lib.nb_block_on_mutex()


def python_callback(value):
    forever.wait()
    return value


PY_CALLBACK = CALLBACK(python_callback)


@role("callback")
def calls_back():
    lib.nb_call_back(PY_CALLBACK)


@role("signal")
def signalled():
    lib.nb_block_in_signal()


@role("zlib")
def compressor():
    data = os.urandom(1 << 16) * 64
    while True:
        zlib.compress(data, 9)


threads = [sleeper, selecter, locker, receiver, sorter, mutexer, calls_back, signalled]
if busy:
    threads.append(compressor)
block_sigusr1()
for t in threads:
    t.start()
for t in threads:
    ready.acquire()
roles["c_thread"] = lib.nb_start_c_thread()
roles["main"] = native_id()
with open(truth_path + ".tmp", "w") as f:
    json.dump({"threads": roles, "pid": os.getpid()}, f)
os.rename(truth_path + ".tmp", truth_path)
forever.wait()
