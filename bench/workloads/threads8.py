"""Workload (b): 8 threads, each 20 Python frames deep, CPU work at the leaves.

The main thread waits in ``join`` (idle).  Iterations of all 8 workers are
summed; worker 0 writes the progress lines.
"""
import threading

from _progress import Progress, parse_args
from deep_common import run_at_depth

if __name__ == "__main__":
    args = parse_args(__doc__, depth=20, threads=8)
    progress = Progress(args.progress, args.threads, args.duration)
    workers = [threading.Thread(target=run_at_depth, args=(args.depth, progress, i), name="worker-%d" % i,
                                daemon=True) for i in range(args.threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
