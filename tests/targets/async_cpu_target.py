"""Target for ``record --async``: two named tasks that take turns burning CPU.

    python async_cpu_target.py READY_PATH

Each task spins in its own coroutine chain (``outer_NAME`` -> ``spin``) for a
few milliseconds, then yields to the loop, forever.  READY_PATH is written
once both run.  Runs on CPython 3.6 to 3.15 with the stdlib only (3.6/3.7 tasks have no name).
"""
import asyncio
import os
import sys
import time

READY = os.path.abspath(sys.argv[1])
STARTED = set()


def burn(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


async def spin(tag):
    while True:
        STARTED.add(tag)
        if len(STARTED) == 2 and not os.path.exists(READY):
            with open(READY + ".tmp", "w") as fh:
                fh.write("ready")
            os.replace(READY + ".tmp", READY)
        burn(0.005)
        await asyncio.sleep(0)


async def outer_alpha():
    await spin("alpha")


async def outer_beta():
    await spin("beta")


async def main():
    tasks = [asyncio.ensure_future(outer_alpha()), asyncio.ensure_future(outer_beta())]
    for task, name in zip(tasks, ("cpu-alpha", "cpu-beta")):
        if hasattr(task, "set_name"):
            task.set_name(name)
    await asyncio.gather(*tasks)


if hasattr(asyncio, "run"):
    asyncio.run(main())
else:   # 3.6
    asyncio.get_event_loop().run_until_complete(main())
