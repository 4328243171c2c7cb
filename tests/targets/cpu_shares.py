"""A workload with known CPU shares: 60% in ``heavy``, 30% in ``medium``, 10% in ``light``.

    python cpu_shares.py [SECONDS] [--warmup SECONDS] [--warmup-until-traced MAX] [--ready FILE]

Time is sliced with ``time.perf_counter`` against absolute deadlines, so the
shares hold exactly whatever the machine's speed (a slice the process spends
descheduled still ends at its deadline).  The run is a whole number of
cycles (about SECONDS, default: forever) so a recording of the whole run has
no partial cycle; it is preceded by ``warmup`` (default 2.5 s), which gives a
profiler launching this script time to attach before the measured cycles
begin.  The cycle (497.3 ms: long enough that few ticks fall near a phase boundary, where a
late tick can land on either side, short enough that a stalled sampler loses ticks
from every phase alike) is not a multiple of a 100 Hz period, so
the ticks sweep every phase of the cycle instead of locking onto a few.
FILE (if given) is written when the measured cycles start.  Stdlib only.
"""
import os
import sys
import time

_clock = getattr(time, "perf_counter", time.time)  # 2.7 has no perf_counter

CYCLE = 0.4973
SHARES = (0.6, 0.3, 0.1)


def burn(until):
    clock = _clock
    x = 0
    while clock() < until:
        x = (x * 31 + 7) & 0xFFFF
    return x


def warmup(until):
    return burn(until)


def heavy(until):
    return burn(until)


def medium(until):
    return burn(until)


def light(until):
    return burn(until)


def traced():
    """A profiler pausing us with ptrace shows as our TracerPid while it holds us."""
    try:
        with open("/proc/self/status") as fh:
            return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in fh)
    except OSError:
        return True


def main(seconds, warm, ready, until_traced=0.0):
    warmup(_clock() + warm)
    if until_traced:
        # a loaded machine may take longer than ``warm`` to attach: warm up until it has
        # (a condition, not a longer fixed wait), then one more second; at most ``until_traced``
        give_up = _clock() + until_traced
        while not traced() and _clock() < give_up:
            warmup(_clock() + 0.01)
        warmup(_clock() + 1.0)
    if ready:
        with open(ready + ".tmp", "w") as fh:
            fh.write("ready\n")
        os.rename(ready + ".tmp", ready)
    cycles = max(1, int(round(seconds / CYCLE))) if seconds else None
    t = _clock()
    done = 0
    while cycles is None or done < cycles:
        heavy(t + CYCLE * SHARES[0])
        medium(t + CYCLE * (SHARES[0] + SHARES[1]))
        light(t + CYCLE)
        t += CYCLE
        done += 1


def option(args, name, default):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return default


if __name__ == "__main__":
    args = sys.argv[1:]
    ready = option(args, "--ready", None)
    warm = float(option(args, "--warmup", "2.5"))
    until_traced = float(option(args, "--warmup-until-traced", "0"))
    main(float(args[0]) if args else 0.0, warm, ready, until_traced)
