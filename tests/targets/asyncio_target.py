"""Target for the asyncio task tests: tasks of many shapes, then TRUTH.

    python asyncio_target.py TRUTH.json [--many N]

Runs on CPython 3.6 to 3.15 with the stdlib only (3.6/3.7: no asyncio.run,
get_running_loop, get_coro or task names; ``name`` is null in TRUTH there).  Builds gather fan-out,
nested create_task, a TaskGroup (3.11+), wait_for, a task awaiting a future a
thread will set, an async generator consumer and a task with a non-ASCII
name (or, with ``--many N``, N tasks parked on one event), waits until every
task is suspended, then writes TRUTH from a loop callback (outside any task):
``asyncio.all_tasks()`` with each task's id, name and coroutine chain from
``get_coro()`` following ``cr_await`` / ``gi_yieldfrom`` / ``ag_await``
(function, file, line; outermost first), and the await edges the structure
guarantees.  Then it stays suspended until killed.
"""
import asyncio
import json
import os
import sys
import threading

args = sys.argv[1:]
TRUTH_PATH = os.path.abspath(args[0])
MANY = int(args[args.index("--many") + 1]) if "--many" in args else 0
FOREVER = None  # the event every task ends up waiting on
EDGES = []      # (awaiter name, awaited name) guaranteed by the structure
ROLES = {}      # id(task) -> the name it is given (kept here too: 3.6/3.7 tasks have no name)


async def leaf(tag):
    await FOREVER.wait()


async def middle(tag):
    await leaf(tag)


async def worker(tag):
    await middle(tag)


async def nested_parent():
    child = asyncio.ensure_future(worker("nested-child"))
    ROLES[id(child)] = "nested-child"
    child.set_name("nested-child") if hasattr(child, "set_name") else None
    await child


async def gather_parent():
    await asyncio.gather(*(named(worker("g%d" % i), "gather-child-%d" % i) for i in range(3)))


def named(coro, name):
    task = asyncio.ensure_future(coro)
    ROLES[id(task)] = name
    if hasattr(task, "set_name"):
        task.set_name(name)
    return task


async def group_parent():
    async with asyncio.TaskGroup() as tg:
        for i in range(2):
            child = tg.create_task(worker("tg%d" % i), name="group-child-%d" % i)
            ROLES[id(child)] = child.get_name()


async def wait_for_parent():
    await asyncio.wait_for(worker("wait_for"), 3600)


def running_loop():
    get = getattr(asyncio, "get_running_loop", None)
    return get() if get is not None else asyncio.get_event_loop()   # 3.6: the running loop inside a task


def coro_of(task):
    return task.get_coro() if hasattr(task, "get_coro") else task._coro   # get_coro: 3.8+


async def thread_future_waiter():
    loop = running_loop()
    fut = loop.create_future()
    gate = threading.Event()

    def setter():
        gate.wait()
        loop.call_soon_threadsafe(fut.set_result, 1)
    threading.Thread(target=setter, name="future-setter", daemon=True).start()
    await fut


async def agen():
    yield 1
    await FOREVER.wait()
    yield 2


async def agen_consumer():
    async for _ in agen():
        pass


def chain_of(task):
    out = []
    coro = coro_of(task)
    seen = set()
    while coro is not None and id(coro) not in seen:
        seen.add(id(coro))
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        out.append({"name": frame.f_code.co_name, "filename": frame.f_code.co_filename, "line": frame.f_lineno})
        nxt = None
        for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
            if hasattr(coro, attr):
                nxt = getattr(coro, attr)
                break
        if nxt is None or not any(hasattr(nxt, a) for a in ("cr_frame", "gi_frame", "ag_frame")):
            break
        coro = nxt
    return out


def name_of(task):
    return task.get_name() if hasattr(task, "get_name") else None


def write_truth(loop):
    tasks = asyncio.all_tasks(loop) if hasattr(asyncio, "all_tasks") else asyncio.Task.all_tasks(loop)
    truth = {"pid": os.getpid(), "thread_id": threading.get_ident(), "version": list(sys.version_info[:2]),
             "tasks": [{"task_id": id(t), "name": name_of(t), "done": t.done(), "chain": chain_of(t),
                        "coro_qualname": coro_of(t).__qualname__, "role": ROLES.get(id(t))} for t in tasks],
             "edges": EDGES}
    tmp = TRUTH_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(truth, fh, ensure_ascii=False)
    os.rename(tmp, TRUTH_PATH)


async def main():
    global FOREVER
    FOREVER = asyncio.Event()
    loop = running_loop()
    tasks = []
    if MANY:
        tasks = [named(worker("many"), "many-%d" % i) for i in range(MANY)]
    else:
        tasks.append(named(nested_parent(), "nested-parent"))
        EDGES.append(("nested-parent", "nested-child"))
        tasks.append(named(gather_parent(), "gather-parent"))
        EDGES.extend(("gather-parent", "gather-child-%d" % i) for i in range(3))
        if hasattr(asyncio, "TaskGroup"):
            tasks.append(named(group_parent(), "group-parent"))
            EDGES.extend(("group-parent", "group-child-%d" % i) for i in range(2))
        tasks.append(named(wait_for_parent(), "wait-for-parent"))
        tasks.append(named(thread_future_waiter(), "thread-future"))
        tasks.append(named(agen_consumer(), "agen-consumer"))
        tasks.append(named(worker("unicode"), "naïve-задача-名前"))
    for _ in range(20):
        await asyncio.sleep(0.01)
    loop.call_soon(write_truth, loop)
    await FOREVER.wait()


if hasattr(asyncio, "run"):
    asyncio.run(main())
else:   # 3.6
    asyncio.get_event_loop().run_until_complete(main())
