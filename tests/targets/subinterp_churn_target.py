"""Creates and destroys subinterpreters in a loop while its main thread waits.

    python subinterp_target.py READY_FILE

READY_FILE gets {"pid", "main_thread_id", "module"} once the churn has
started; ``module`` is null when this interpreter has no subinterpreter module
(the test then skips).  Stdlib only.
"""
import json
import os
import sys
import threading
import time

mod = None
for name in ("_interpreters", "_xxsubinterpreters"):
    try:
        mod = __import__(name)
        break
    except ImportError:
        continue


def churn():
    while True:
        interp = mod.create()
        time.sleep(0.002)
        mod.destroy(interp)


def main():
    path = sys.argv[1]
    if mod is not None:
        threading.Thread(target=churn, name="churn", daemon=True).start()
        time.sleep(0.2)
    with open(path + ".tmp", "w") as fh:
        json.dump({"pid": os.getpid(), "main_thread_id": threading.main_thread().ident,
                   "module": mod.__name__ if mod else None}, fh)
    os.replace(path + ".tmp", path)
    time.sleep(3600)


if __name__ == "__main__":
    main()
