"""A multiprocessing worker stuck on a queue while its parent joins it.

    python hang_mp_queue.py [READY_FILE]

The worker (``consume``) blocks in ``tasks.get()`` for a task that never
comes; the parent (``main``) blocks in ``worker.join()``.  READY_FILE
(optional) gets the worker's pid once it runs.  Stdlib only; runs on 2.7 and 3.6+.
"""
from __future__ import print_function

import multiprocessing
import os
import sys


def consume(tasks, ready):
    if ready:
        with open(ready, "w") as fh:
            fh.write("%d\n" % os.getpid())
    item = tasks.get()  # WORKER-GET
    print("never reached", item)


def main(ready):
    print("mp target starting")
    sys.stdout.flush()
    tasks = multiprocessing.Queue()
    worker = multiprocessing.Process(target=consume, args=(tasks, ready), name="consumer")
    worker.start()
    worker.join()  # PARENT-JOIN


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
