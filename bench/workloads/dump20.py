"""Target for the dump bench: 20 threads of varied shapes, all blocked.

Shapes: sleeps 30 frames deep, recursion 100 deep, Lock/Event/Condition/Barrier
waits, queue.get, select and os.read on pipes, socketpair recv, a generator and
a nested generator, a method and a class method, a lambda, a comprehension,
closures, an asyncio loop with coroutines, and exec'd code with a pseudo
filename, with locals of many types on the way.
When every thread is in place (19 workers + the main thread = 20 threads),
"ready" is written to --ready FILE (or stdout).
The main thread then waits on an Event (idle) until killed.
"""
import argparse
import asyncio
import os
import queue
import select
import socket
import sys
import threading
import time

N_THREADS = 20
FOREVER = 10 ** 6
ready = threading.Barrier(N_THREADS)  # the workers and the main thread
never = threading.Event()
lock = threading.Lock()
lock.acquire()
cond = threading.Condition()
barrier = threading.Barrier(3)  # never completes: two waiters only
jobs = queue.Queue()
pipe_r, pipe_w = os.pipe()
pipe_r2, pipe_w2 = os.pipe()
sock_a, sock_b = socket.socketpair()


def arrive():
    ready.wait()


def t_sleep_deep(n=30):
    numbers = list(range(n))
    if n:
        return t_sleep_deep(n - 1)
    arrive()
    time.sleep(FOREVER)


def t_recursion_100(n=100, payload={"k": (1, 2.5, "three")}):
    if n:
        return t_recursion_100(n - 1, payload)
    arrive()
    never.wait()


def t_lock():
    name = "blocked on a Lock"
    arrive()
    lock.acquire()


def t_event():
    flags = {1, 2, 3}
    arrive()
    never.wait()


def t_condition():
    with cond:
        arrive()
        cond.wait()


def t_barrier():
    arrive()
    barrier.wait()


def t_queue():
    pending = [b"bytes", 1 + 2j, None, True]
    arrive()
    jobs.get()


def t_select():
    arrive()
    select.select([pipe_r], [], [])


def t_read():
    arrive()
    os.read(pipe_r2, 1)


def t_socket():
    arrive()
    sock_a.recv(1)


def _gen():
    total = 0
    while True:
        arrive()
        time.sleep(FOREVER)
        yield total


def _outer_gen():
    yield from _gen()


def t_generator():
    for _ in _gen():
        pass


def t_nested_generator():
    for _ in _outer_gen():
        pass


class Worker:
    def __init__(self, label):
        self.label = label

    def method(self, depth=5):
        if depth:
            return self.method(depth - 1)
        arrive()
        time.sleep(FOREVER)

    @classmethod
    def klass(cls):
        arrive()
        never.wait()


def t_method():
    Worker("w").method()


def t_classmethod():
    Worker.klass()


def t_lambda():
    f = lambda: (arrive(), time.sleep(FOREVER))  # noqa: E731
    f()


def t_comprehension():
    return [(arrive(), time.sleep(FOREVER)) for _ in range(1)]


def t_closure():
    captured = "captured"

    def inner():
        def innermost():
            arrive()
            time.sleep(FOREVER + len(captured))
        return innermost()
    return inner()


def t_asyncio():
    async def leaf(i):
        await asyncio.sleep(FOREVER)

    async def main():
        tasks = [asyncio.ensure_future(leaf(i)) for i in range(3)]
        await asyncio.sleep(0)
        arrive()
        await asyncio.gather(*tasks)

    asyncio.run(main())


def t_exec():
    code = compile("def execd():\n    arrive()\n    never.wait()\nexecd()\n", "<pseudo-file>", "exec")
    exec(code, {"arrive": arrive, "never": never})


# 19 blocked workers + the main thread (blocked on an Event) = 20 threads.
THREADS = [t_sleep_deep, t_recursion_100, t_lock, t_event, t_condition, t_barrier, t_queue, t_select,
           t_read, t_socket, t_generator, t_nested_generator, t_method, t_classmethod,
           t_lambda, t_comprehension, t_closure, t_asyncio, t_exec]
assert len(THREADS) + 1 == N_THREADS


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready", help="write 'ready' to this file when every thread is blocked")
    args = parser.parse_args()
    for fn in THREADS:
        threading.Thread(target=fn, name=fn.__name__[2:], daemon=True).start()
    arrive()
    time.sleep(0.2)  # let the last arrivals get from the barrier into their blocking call
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("ready %d\n" % os.getpid())
        os.replace(args.ready + ".tmp", args.ready)
    else:
        print("ready", os.getpid(), flush=True)
    never.wait()


if __name__ == "__main__":
    sys.setrecursionlimit(5000)
    main()
