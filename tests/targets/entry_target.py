"""A stack that goes through C calls back into Python, with its expected entry frames as TRUTH.

``<module>`` -> ``outer`` -> ``sorted(key=by_sorted)`` (C) -> ``by_sorted`` ->
``map(by_map, ...)`` consumed by ``list`` (C) -> ``by_map`` -> ``leaf``, which
writes TRUTH and blocks in a C call on the same line.

TRUTH: ``{"pid", "frames": [[function, is_entry], ...]}`` innermost first,
where ``is_entry`` is CPython's rule for "an eval-loop call started with this
frame": every frame before 3.11 (each Python call runs its own eval loop);
from 3.11 only the frames entered from C (the two callbacks) and the module
frame the interpreter started with.
"""
import json
import os
import sys
import threading

TRUTH = sys.argv[1]
BLOCK = threading.Lock()
BLOCK.acquire()
EVERY_FRAME = sys.version_info < (3, 11)
ENTERED_FROM_C = {"by_sorted", "by_map", "<module>"}


def write_truth():
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_name
        frames.append([name, EVERY_FRAME or name in ENTERED_FROM_C])
        frame = frame.f_back
    tmp = TRUTH + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "frames": frames}, f)
    os.replace(tmp, TRUTH)


def leaf():
    write_truth(); BLOCK.acquire()  # noqa: E702  (same line: the stack seen is the one written)


def by_map(x):
    leaf()
    return x


def by_sorted(x):
    list(map(by_map, [x]))
    return x


def outer():
    sorted([1], key=by_sorted)


outer()
