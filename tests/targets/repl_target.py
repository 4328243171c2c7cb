# -*- coding: utf-8 -*-
"""Target for the REPL tests: named threads holding nested values, a busy thread, then TRUTH.

    python repl_target.py TRUTH.json [--no-busy]

Threads: "worker-a" (in ``Handler.handle`` -> ``wait_here``, with nested
locals), "worker-b" (in ``idle_loop``), "busy" (spinning in ``spin`` ->
``hot_function``) and the main thread.  TRUTH.json holds the pid, every
thread's ids and the target's own ``repr()`` of the values the tests print.
Creating TRUTH.json + ".exit" makes the target exit (status 0) at once.
Runs on CPython 2.7 and 3.6-3.15, stdlib only.
"""
import functools
import io
import json
import os
import sys
import threading
import time

TRUTH_PATH = os.path.abspath(sys.argv[1])
WITH_BUSY = "--no-busy" not in sys.argv
LOCK = threading.Lock()
LOCK.acquire()


class Arrivals(object):
    """Workers ``arrive()`` and go straight on to where they block; the main thread
    ``wait()``s for all of them (threading.Barrier is 3.2+, and would keep every worker
    in Python code until the last one arrives)."""

    def __init__(self, parties):
        self.parties = parties
        self.arrived = 0
        self.condition = threading.Condition()

    def arrive(self):
        with self.condition:
            self.arrived += 1
            self.condition.notify_all()

    def wait(self):
        with self.condition:
            while self.arrived < self.parties:
                self.condition.wait(1.0)


READY = Arrivals(2 + WITH_BUSY)
NATIVE_IDS = {}


_get_native_id = getattr(threading, "get_native_id", None)
if _get_native_id is None:  # before 3.8: the gettid system call (resolved once, before any thread)
    import ctypes
    _get_native_id = functools.partial(ctypes.CDLL(None).syscall, 186)  # SYS_gettid on x86-64


def record_native_id():
    """The calling thread's OS id under its name (``Thread.native_id`` exists from 3.8 only)."""
    NATIVE_IDS[threading.current_thread().name] = _get_native_id()

GLOBAL_CONFIG = {"mode": "test", "limits": [10, 20, 30], "ratio": 0.25}
GLOBAL_NAME = "repl-target ☃"


class Request(object):
    kind = "GET"

    def __init__(self, path):
        self.path = path
        self.items = [1, "two", 3.0, None, (4, 5)]
        self.meta = {"k": "v", 7: [True, False], "deep": {"x": {"y": {"z": [1, [2, [3, [4, [5]]]]]}}}}
        self.parent = None


class Handler(object):
    def __init__(self):
        self.requests = [Request("/a"), Request("/b")]
        self.requests[1].parent = self.requests[0]

    def handle(self, count):
        payload = {"nested": {"a": [1, (2, "x")], "b": "é"}, 3: "three", "list": list(range(12))}
        request = self.requests[1]
        big = "x" * 300
        return wait_here(payload, request, count)


def wait_here(payload, request, count):
    local_tuple = (payload["nested"], count)
    record_native_id()
    READY.arrive()
    LOCK.acquire()
    return local_tuple


def idle_loop(seconds):
    marker = ["idle", seconds]
    record_native_id()
    READY.arrive()
    while True:
        time.sleep(seconds)


def hot_function(n):
    # never returns: a stop at any moment finds the busy thread inside it, so the tests that
    # look for it on the stack (a REPL `bt`, a saved snapshot) do not depend on when it came
    while True:
        total = 0
        for i in range(n):
            total += i * i


def spin():
    record_native_id()
    READY.arrive()
    hot_function(2000)


def exit_watch():
    record_native_id()
    flag = TRUTH_PATH + ".exit"
    while not os.path.exists(flag):
        time.sleep(0.05)
    os._exit(0)


handler = Handler()
threads = [threading.Thread(target=handler.handle, args=(5,), name="worker-a"),
           threading.Thread(target=idle_loop, args=(3600,), name="worker-b")]
if WITH_BUSY:
    threads.append(threading.Thread(target=spin, name="busy"))
threads.append(threading.Thread(target=exit_watch, name="exit-watch"))
for t in threads:
    t.daemon = True
    t.start()
record_native_id()
READY.wait()
time.sleep(0.2)

payload_truth = {"nested": {"a": [1, (2, "x")], "b": "é"}, 3: "three", "list": list(range(12))}
req = handler.requests[1]
truth = {
    "pid": os.getpid(),
    "version": "%d.%d.%d" % sys.version_info[:3],
    "threads": {t.name: {"ident": t.ident, "native_id": NATIVE_IDS.get(t.name)}
                for t in threading.enumerate()},
    "values": {
        "payload": repr(payload_truth),
        "payload['nested']['a'][1]": repr(payload_truth["nested"]["a"][1]),
        "payload['nested']['b']": repr(payload_truth["nested"]["b"]),
        "payload[3]": repr(payload_truth[3]),
        "payload['list'][-1]": repr(payload_truth["list"][-1]),
        "request.items": repr(req.items),
        "request.items[4][1]": repr(req.items[4][1]),
        "request.meta[7]": repr(req.meta[7]),
        "request.meta['deep']": repr(req.meta["deep"]),
        "request.path": repr(req.path),
        "request.parent.path": repr(req.parent.path),
        "request.kind": repr(req.kind),
        "local_tuple": repr((payload_truth["nested"], 5)),
        "count": repr(5),
        "GLOBAL_CONFIG['limits']": repr(GLOBAL_CONFIG["limits"]),
        "GLOBAL_NAME": repr(GLOBAL_NAME),
        "handler.requests[0].path": repr(handler.requests[0].path),
        "len": repr(len),
    },
}
tmp = TRUTH_PATH + ".tmp"
text = json.dumps(truth, ensure_ascii=True, indent=1)
with io.open(tmp, "w", encoding="utf-8") as fh:
    fh.write(text if isinstance(text, type(u"")) else text.decode("ascii"))
os.rename(tmp, TRUTH_PATH)
while True:
    time.sleep(3600)
