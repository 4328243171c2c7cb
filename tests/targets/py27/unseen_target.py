# -*- coding: utf-8 -*-
"""The second `dump` target in CPython 2.7 syntax (tests/targets/unseen_target.py for 3.x).

    python2.7 unseen_target.py TRUTH.json

The same protocol and 21 shapes; where 2.7 lacks a construct the shape is
replaced by a 2.7 one: ``yield from`` by a generator delegating in a loop,
``super()`` by ``super(Child, self)``, the async generator by an old-style
class's method, the non-ASCII class by an ASCII one with a non-ASCII thread
name and local, and the ThreadPoolExecutor worker by a Queue consumer holding its job.
"""
import contextlib
import functools
import os
import select
import socket
import sys
import thread
import threading
import Queue

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import truthlib  # noqa: E402

H = truthlib.Harness()
GATE = truthlib.blocked_lock()
HOLD = truthlib.blocked_lock()


# 1. a decorator's wrapper frame between caller and callee
def traced(fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        calls = [fn.__name__]
        return fn(*a, **kw)
    return wrapper


@traced
def decorated(x, y=3):
    product = x * y
    H.ready("decorated"); GATE.acquire()


# 2. functools.partial target
def partial_target(prefix, suffix):
    joined = prefix + suffix
    H.ready("partial"); GATE.acquire()


# 3. sorted() calling a key lambda
def sort_with_key():
    data = [3, 1, 2]
    return sorted(data, key=lambda v: (v == 1 and (H.ready("sorted-key"), GATE.acquire()), v))


# 4. map() (a list in 2.7)
def square_and_wait(v):
    if v == 2:
        H.ready("map"); GATE.acquire()
    return v * v


def run_map():
    return list(map(square_and_wait, [1, 2, 3]))


# 5. blocking inside a @contextmanager generator's setup
@contextlib.contextmanager
def managed(resource):
    state = {"resource": resource, "open": True}
    H.ready("contextmanager"); GATE.acquire()
    yield state


def use_context():
    with managed("db") as st:
        return st


# 6. a generator delegating to another in a loop (2.7 has no yield from)
def inner_gen():
    yield "first"
    H.ready("yield-from"); GATE.acquire()
    yield "second"


def outer_gen():
    prefix = "outer"
    for item in inner_gen():
        yield prefix, item


def drain_generators():
    return list(outer_gen())


# 7. mutual recursion
def is_even(n):
    return True if n == 0 else is_odd(n - 1)


def is_odd(n):
    if n == 0:
        H.ready("mutual-recursion"); GATE.acquire()
        return False
    return is_even(n - 1)


# 8. super(Child, self) chain
class Base(object):
    def describe(self, depth):
        level = "base"
        H.ready("super-chain"); GATE.acquire()
        return level


class Child(Base):
    def describe(self, depth):
        level = "child"
        return super(Child, self).describe(depth + 1)


# 9. property getter; 10. blocking in __init__
class Holder(object):
    def __init__(self):
        self._value = 42

    @property
    def value(self):
        cached = self._value
        H.ready("property"); GATE.acquire()
        return cached


def read_property():
    return Holder().value


class Constructed(object):
    def __init__(self, size):
        self.items = [0] * size
        H.ready("init"); GATE.acquire()


# 11. blocking in an except block with the exception bound
def in_except_block():
    try:
        raise ValueError("boom")
    except ValueError as err:
        message = str(err)
        H.ready("except-block"); GATE.acquire()


# 12. blocking inside a class body
def build_class():
    class Built(object):
        attribute = "in class body"
        H.ready("class-body"); GATE.acquire()
    return Built


# 13. eval'd lambda (filename "<string>")
def run_eval_lambda():
    fn = eval("lambda token: (H.ready('eval-lambda'), GATE.acquire())", {"H": H, "GATE": GATE})
    return fn("tok")


# 14. a raw thread module thread: no threading.Thread, so no name
def raw_thread_body(tag):
    H.ready("raw-thread"); GATE.acquire()


# 15. socket recv
def socket_reader(sock):
    H.ready("socket-recv"); sock.recv(1)


# 16. an old-style class's method, called through an old-style subclass
class OldBase:
    def wait(self, tag):
        label = tag * 2
        H.ready("old-style"); GATE.acquire()


class OldChild(OldBase):
    def start_waiting(self):
        return self.wait("t")


# 17. generator expression consumed by sum()
def wait_in_genexpr(v):
    if v == 1:
        H.ready("genexpr"); GATE.acquire()
    return v


def sum_genexpr():
    return sum(wait_in_genexpr(x) for x in range(3))


# 18. threading.Thread subclass with run() overridden; non-ASCII thread name and local
class SubclassThread(threading.Thread):
    def run(self):
        count = 3
        self.special_method(count)

    def special_method(self, n):
        valeur = u"ça marche ✓"
        H.ready("thread-subclass"); GATE.acquire()


# 19. dict comprehension with a nested list comprehension
def dict_comprehension():
    keys = ["a", "b"]
    return {k: [(H.ready("dictcomp"), GATE.acquire()) for _ in range(1)] for k in keys[:1]}


# 20. a Queue consumer working on the job it took (a blocked Queue.get() would wait in Python code)
def queue_worker(jobs):
    payload = {"job": jobs.get()}
    H.ready("queue-job"); GATE.acquire()


# 21. select() in C
def select_wait(rfd):
    H.ready("select"); select.select([rfd], [], [], 10 ** 6)


def start(name, fn, *a):
    t = threading.Thread(target=fn, args=a, name=name)
    t.daemon = True
    t.start()


def main(truth_path):
    a_sock, b_sock = socket.socketpair()
    rfd, wfd = os.pipe()
    jobs = Queue.Queue()
    jobs.put(17)
    shapes = 21
    H.expected = shapes
    start("decorated", decorated, 7)
    start("partial", functools.partial(partial_target, "pre"), "-post")
    start("sorted-key", sort_with_key)
    start("map", run_map)
    start("contextmanager", use_context)
    start("yield-from", drain_generators)
    start("mutual-recursion", is_even, 41)
    start("super-chain", Child().describe, 0)
    start("property", read_property)
    start("init", Constructed, 4)
    start("except-block", in_except_block)
    start("class-body", build_class)
    start("eval-lambda", run_eval_lambda)
    thread.start_new_thread(raw_thread_body, ("raw",))
    start("socket-recv", socket_reader, a_sock)
    start("old-style", OldChild().start_waiting)
    start("genexpr", sum_genexpr)
    t = SubclassThread(name="thread sübclass ✓")  # a UTF-8 byte string, as 2.7 threading wants
    t.daemon = True
    t.start()
    start("dictcomp", dict_comprehension)
    start("queue-job", queue_worker, jobs)
    start("select", select_wait, rfd)
    H.write_truth(truth_path); HOLD.acquire()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(os.path.abspath(sys.argv[1]))
