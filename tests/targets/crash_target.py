"""Target for the core-file tests: known frames in two threads, then wait or crash for real.

    python crash_target.py READY.json [--segv | --abort]

Raises its own RLIMIT_CORE soft limit to the hard one (so the kernel writes a
core), starts a worker that blocks in ``worker_waits``, writes READY.json
({"pid", "lines": {function: line of its blocking or crashing call}}), then:
with no option the main thread blocks in ``main_waits`` until killed; with
``--segv`` it dereferences NULL through ctypes in ``crash_here`` (a real
SIGSEGV with the GIL held); with ``--abort`` it calls ``os.abort()`` there.
Runs on CPython 3.8 to 3.15 with the stdlib only.
"""
import ctypes
import json
import os
import resource
import sys
import threading
import time

args = sys.argv[1:]
if not args or args[0].startswith("-"):
    sys.exit(__doc__)
READY = args[0]
MODE = args[1] if len(args) > 1 else ""
soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
started = threading.Event()
never = threading.Event()


def worker_waits(label):
    started.set(); never.wait()  # BLOCK


def crash_here(kind):
    payload = {"answer": 42, "kind": kind}
    ctypes.string_at(0) if kind == "--segv" else os.abort()  # BLOCK
    return payload


def main_waits():
    time.sleep(10 ** 6)  # BLOCK


def block_lines():
    """function name -> line of its blocking (or crashing) call, from this file's own text."""
    lines, current = {}, None
    with open(os.path.abspath(__file__), encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if text.startswith("def "):
                current = text[4:text.index("(")]
            elif text.rstrip().endswith("# BLOCK"):
                lines[current] = number
    return lines


def wait_until_sleeping(native_id):
    """Until the worker sleeps in the kernel (its wait), seen three times in a row."""
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 3 and time.monotonic() < deadline:
        try:
            with open("/proc/self/task/%d/stat" % native_id) as fh:
                data = fh.read()
            seen = seen + 1 if data[data.rindex(")") + 2] == "S" else 0
        except OSError:
            seen = 0
        time.sleep(0.02)


worker = threading.Thread(target=worker_waits, args=("the worker",), name="waiting-worker", daemon=True)
worker.start()
started.wait()
wait_until_sleeping(worker.native_id)
with open(READY + ".tmp", "w") as fh:
    json.dump({"pid": os.getpid(), "lines": block_lines(), "mode": MODE}, fh)
os.rename(READY + ".tmp", READY)
if MODE in ("--segv", "--abort"):
    crash_here(MODE)
main_waits()
