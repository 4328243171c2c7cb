"""Workload (c): one thread, 500 Python frames deep, CPU work at the leaf."""
from _progress import Progress, parse_args
from deep_common import run_at_depth

if __name__ == "__main__":
    args = parse_args(__doc__, depth=500)
    run_at_depth(args.depth, Progress(args.progress, 1, args.duration))
