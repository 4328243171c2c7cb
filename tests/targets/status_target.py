# -*- coding: utf-8 -*-
"""Target for the thread-status tests: a thread inside gc.collect(), a thread inside ``except``.

    python status_target.py TRUTH.json [N]

The "collector" thread builds a cycle of N lists (default 1,000,000) holding
an object whose ``__del__`` blocks on an Event, and calls ``gc.collect()``:
while the snapshot is taken it is provably inside the collection (in the
finalizer the collection called).  2.7's collector never calls ``__del__`` of
cyclic garbage (it leaves it in ``gc.garbage``; PEP 442 came in 3.4), but it
does call weakref callbacks: there the finalizer is ``on_collect``, the
callback of a weak reference to that object.  TRUTH says which (``finalizer``).  The "handler" thread raises
``ValueError("boom: naïve 42")`` and waits inside the ``except`` block.
TRUTH (written once both are parked): each thread's id, role, and the
exception it handles (type, message) from ``sys.exc_info()`` in that thread
(None when it handles none), each taken on the thread's last step before it parks.
Runs on CPython 2.7 and 3.6 to 3.15 with the stdlib only (2.7: the message is
``unicode(value)``, since ``str()`` of a non-ASCII unicode message raises there).
"""
import gc
import json
import os
import sys
import threading
import weakref

try:
    _get_ident = threading.get_ident
except AttributeError:  # 2.7
    import thread as _thread_module
    _get_ident = _thread_module.get_ident
_text = str if sys.version_info[0] >= 3 else unicode  # noqa: F821 - 2.7 name

TRUTH_PATH = os.path.abspath(sys.argv[1])
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
IN_DEL = threading.Event()
HANDLING = threading.Event()
FOREVER = threading.Event()
ROLES = {}
EXCEPTIONS = {}
KEEP = []  # 2.7: the weak reference must itself be reachable for its callback to run
FINALIZER = "__del__" if sys.version_info >= (3, 4) else "on_collect"


def handled():
    """What ``sys.exc_info()`` says in the calling thread: {type, message} or None."""
    kind, value, _ = sys.exc_info()
    if value is None:
        return None
    return {"type": kind.__name__, "message": _text(value)}


def park():
    EXCEPTIONS[_get_ident()] = handled()
    IN_DEL.set()
    FOREVER.wait()


class Blocker(object):
    def __del__(self):
        park()


class Plain(object):
    pass


def on_collect(ref):
    park()


def collector():
    ROLES[_get_ident()] = "collector"
    gc.disable()
    nodes = [[None] for _ in range(SIZE)]
    for i in range(SIZE):
        nodes[i][0] = nodes[(i + 1) % SIZE]
    blocker = Blocker() if FINALIZER == "__del__" else Plain()
    if FINALIZER == "on_collect":
        KEEP.append(weakref.ref(blocker, on_collect))
    blocker.ring = nodes[0]
    nodes[0].append(blocker)
    del nodes, blocker
    gc.collect()


def handler():
    ROLES[_get_ident()] = "handler"
    try:
        raise ValueError(u"boom: na\u00efve 42")
    except ValueError:
        EXCEPTIONS[_get_ident()] = handled()
        HANDLING.set()
        FOREVER.wait()


def main():
    ROLES[_get_ident()] = "main"
    threads = [threading.Thread(target=collector, name="collector"),
               threading.Thread(target=handler, name="handler")]
    for t in threads:
        t.daemon = True  # (2.7's Thread takes no daemon argument)
        t.start()
    IN_DEL.wait()
    HANDLING.wait()
    EXCEPTIONS[_get_ident()] = handled()
    truth = {"version": list(sys.version_info[:2]), "finalizer": FINALIZER,
             "threads": [{"thread_id": ident, "role": role, "exception": EXCEPTIONS.get(ident)}
                         for ident, role in ROLES.items()]}
    tmp = TRUTH_PATH + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(json.dumps(truth))  # ASCII (escapes): the same bytes from 2.7 and 3.x
    os.rename(tmp, TRUTH_PATH)
    FOREVER.wait()


main()
