"""Target for the thread-status tests: a thread inside gc.collect(), a thread inside ``except``.

    python status_target.py TRUTH.json [N]

The "collector" thread builds a cycle of N lists (default 1,000,000) holding
an object whose ``__del__`` blocks on an Event, and calls ``gc.collect()``:
while the snapshot is taken it is provably inside the collection (in the
finalizer the collection called).  The "handler" thread raises
``ValueError("boom: naïve 42")`` and waits inside the ``except`` block.
TRUTH (written once both are parked): each thread's id, role, and the
exception it handles (type, message) from ``sys.exc_info()`` in that thread.
Runs on CPython 3.8 to 3.15 with the stdlib only.
"""
import gc
import json
import os
import sys
import threading

TRUTH_PATH = os.path.abspath(sys.argv[1])
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
IN_DEL = threading.Event()
HANDLING = threading.Event()
FOREVER = threading.Event()
ROLES = {}
EXCEPTIONS = {}


class Blocker:
    def __del__(self):
        IN_DEL.set()
        FOREVER.wait()


def collector():
    ROLES[threading.get_ident()] = "collector"
    gc.disable()
    nodes = [[None] for _ in range(SIZE)]
    for i in range(SIZE):
        nodes[i][0] = nodes[(i + 1) % SIZE]
    blocker = Blocker()
    blocker.ring = nodes[0]
    nodes[0].append(blocker)
    del nodes, blocker
    gc.collect()


def handler():
    ROLES[threading.get_ident()] = "handler"
    try:
        raise ValueError("boom: na\u00efve 42")
    except ValueError:
        kind, value, _ = sys.exc_info()
        EXCEPTIONS[threading.get_ident()] = {"type": kind.__name__, "message": str(value)}
        HANDLING.set()
        FOREVER.wait()


def main():
    ROLES[threading.get_ident()] = "main"
    threads = [threading.Thread(target=collector, name="collector", daemon=True),
               threading.Thread(target=handler, name="handler", daemon=True)]
    for t in threads:
        t.start()
    IN_DEL.wait()
    HANDLING.wait()
    truth = {"version": list(sys.version_info[:2]),
             "threads": [{"thread_id": ident, "role": role, "exception": EXCEPTIONS.get(ident)}
                         for ident, role in ROLES.items()]}
    tmp = TRUTH_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(truth, fh, ensure_ascii=False)
    os.replace(tmp, TRUTH_PATH)
    FOREVER.wait()


main()
