"""A busy target with a deep stack: for profiling the sampler's hot path.

    python deep_target.py [DEPTH] [--threads N]

Each of N threads (default 1) recurses DEPTH frames (default 50) and then
spins in pure Python forever.  Stdlib only.
"""
import sys
import threading


def spin():
    x = 0
    while True:
        x = (x * 31 + 7) & 0xFFFF


def recurse(n):
    if n <= 1:
        spin()
    else:
        recurse(n - 1)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:]]
    threads = 1
    if "--threads" in args:
        i = args.index("--threads")
        threads = int(args[i + 1])
        del args[i:i + 2]
    depth = int(args[0]) if args else 50
    # the module frame and recurse(): DEPTH frames in all, counting <module> and spin
    for _ in range(threads - 1):
        threading.Thread(target=recurse, args=(depth - 2,), daemon=True).start()
    recurse(depth - 2)
