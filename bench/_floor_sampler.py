"""The least a sampler written in Python does per pass: the floor that issue 13 measures against.

    python bench/_floor_sampler.py --pid PID --rate HZ -d SECONDS [--threads N]

Why it exists: the goal "sampling CPU at most austin's" asks whether Python can get there at
all.  This loop keeps only what any Python sampler of a live target must do every pass, and
nothing of a real stack walk: sleep to an absolute deadline (``start + k / rate``, as
``Sampler``), one ``process_vm_readv`` through ctypes of exactly the ranges a steady pass of
pyspy-repl reads (its plan, taken from the engine once before the loop: thread states and
data-stack chunks), the buffer copied out as bytes, and per thread one ``unpack_from`` of two
words and one dict count of them as a key.  No frame is decoded, no code object, name or line
is looked up, nothing is written; so its CPU per sample is a lower bound for pyspy-repl (and any
Python sampler), measured in the same run and the same way (whole-process CPU from wait4, long
run minus short run) as pyspy-repl, py-spy and austin.

Prints ``N samples`` (passes x threads, as ``record`` does) on stderr at the end.
"""
import argparse
import ctypes
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("-d", "--duration", type=float, required=True)
    args = parser.parse_args()

    # The plan: what a steady pass of the engine reads (taken once, outside the measured loop).
    import snapshot
    target = snapshot.attach(args.pid)
    for _ in range(20):
        threads = len(target.sample(False, idleness=False).threads)
    plan = list(target.process.memory._plan)
    if not plan or len(plan) > 1024:
        sys.stderr.write("no steady plan to read (%d ranges)\n" % len(plan))
        return 1

    class IOVec(ctypes.Structure):
        _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    readv = libc.process_vm_readv
    readv.restype = ctypes.c_ssize_t
    readv.argtypes = [ctypes.c_int, ctypes.POINTER(IOVec), ctypes.c_ulong, ctypes.POINTER(IOVec),
                      ctypes.c_ulong, ctypes.c_ulong]
    total = sum(size for _, size in plan)
    buffer = ctypes.create_string_buffer(total)
    count = len(plan)
    local, remote = (IOVec * count)(), (IOVec * count)()
    position = 0
    starts = []
    for i, (address, size) in enumerate(plan):
        local[i].iov_base, local[i].iov_len = ctypes.addressof(buffer) + position, size
        remote[i].iov_base, remote[i].iov_len = address, size
        starts.append(position)
        position += size
    # per thread, two words to key on: the first two ranges' starts stand in for "a thread
    # state's frame pointer and its innermost frame's instruction pointer"
    offsets = [(starts[i % count], starts[(i + 1) % count]) for i in range(threads)]
    word = struct.Struct("<Q").unpack_from

    counts = {}
    passes = 0
    period = 1.0 / args.rate
    monotonic, sleep = time.monotonic, time.sleep
    start = monotonic()
    end = start + args.duration
    deadline = start
    pid = args.pid
    while True:
        now = monotonic()
        if now >= end:
            break
        if deadline > now:
            sleep(deadline - now)
        if readv(pid, local, count, remote, count, 0) != total:
            break
        raw = buffer.raw
        for first, second in offsets:
            key = (word(raw, first)[0], word(raw, second)[0])
            counts[key] = counts.get(key, 0) + 1
        passes += 1
        deadline = start + passes * period
    sys.stderr.write("%d samples\n" % (passes * threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
