"""pyspy-repl as a sampling profiler process, for the benches (used while
``pyspy-repl record`` does not exist yet).

Attaches with ``snapshot.attach(pid)`` and calls ``Target.sample(blocking=...)``
on an absolute deadline schedule (``start + k / rate``; a pass that starts after
its deadline counts as late, and more than one period behind skips ahead),
folding each thread's stack into a dict (one counter per distinct stack, as a
profiler does).  Runs until ``--duration`` elapses or SIGINT/SIGTERM, then
prints one JSON line on stdout:

    {"samples": passes, "errors": n, "late": n, "read_calls": process_vm_readv calls
     made during the loop, "loop_cpu": user+sys CPU seconds inside the loop,
     "loop_wall": seconds, "attach_wall": seconds, "startup_cpu": CPU seconds
     before the loop (interpreter start, imports, discovery), "stacks": distinct stacks}
"""
import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STOP = False


def _stop(signum, frame):
    global STOP
    STOP = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=0.0, help="0: until SIGINT/SIGTERM")
    parser.add_argument("--nonblocking", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    t0 = time.perf_counter()
    import snapshot
    from snapshot.errors import ProcessExitedError, SnapshotError
    target = snapshot.attach(args.pid)
    attach_wall = time.perf_counter() - t0
    memory = target.memory
    blocking = not args.nonblocking
    counts = {}
    samples = errors = late = 0
    period = 1.0 / args.rate
    startup = os.times()
    calls0 = getattr(memory, "read_calls", 0)
    start = time.monotonic()
    end = start + args.duration if args.duration > 0 else float("inf")
    deadline = start
    sample = target.sample
    monotonic = time.monotonic
    sleep = time.sleep
    while not STOP:
        now = monotonic()
        if now >= end:
            break
        if now < deadline:
            sleep(deadline - now)
        elif now - deadline > period:
            late += 1
            deadline = now  # skip the missed deadlines rather than burst
        elif samples:
            late += 1
        deadline += period
        try:
            snap = sample(blocking=blocking)
        except ProcessExitedError:
            break
        except SnapshotError:
            errors += 1
            continue
        samples += 1
        for thread in snap.threads:
            key = (thread.thread_id, thread.frames)
            counts[key] = counts.get(key, 0) + 1
    loop_wall = monotonic() - start
    done = os.times()
    target.close()
    print(json.dumps({
        "samples": samples, "errors": errors, "late": late,
        "read_calls": getattr(memory, "read_calls", 0) - calls0,
        "loop_cpu": (done.user + done.system) - (startup.user + startup.system),
        "loop_wall": loop_wall, "attach_wall": attach_wall,
        "startup_cpu": startup.user + startup.system, "stacks": len(counts),
    }), flush=True)


if __name__ == "__main__":
    main()
