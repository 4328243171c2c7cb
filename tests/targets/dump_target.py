"""Target for the `dump` end-to-end tests: threads of many shapes, then TRUTH.

    python dump_target.py TRUTH.json [--workdir DIR] [--no-busy]

Runs on CPython 3.6 to 3.15 with the stdlib only (2.7: tests/targets/py27/dump_target.py).  Starts the worker threads
below, waits until each is blocked on its reporting line, writes TRUTH (see
truthlib.py) to TRUTH.json and then blocks forever (the main thread at module
level) until killed.  DIR (default: a new temporary directory) receives the
helper module with a non-ASCII path and function name.

Every blocking call sits on the same line as the ``H.ready(...)`` before it:
keep it that way when adding shapes.
"""
import asyncio
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truthlib  # noqa: E402

args = sys.argv[1:]
if not args or args[0].startswith("-"):
    sys.exit(__doc__)
TRUTH_PATH = os.path.abspath(args[0])
WORKDIR = args[args.index("--workdir") + 1] if "--workdir" in args else tempfile.mkdtemp(prefix="dump-target-")
WITH_BUSY = "--no-busy" not in args

LOCK = truthlib.blocked_lock()          # every worker blocks on this one
MAIN_BLOCK = truthlib.blocked_lock()
H = truthlib.Harness()


class Plain:
    """An object with the default repr."""

    def __init__(self):
        self.payload = [1, 2, 3]


class Worker:
    kind = "worker"

    def __init__(self, label):
        self.label = label

    def method(self, count):
        total = count * 2
        H.ready("method"); LOCK.acquire()
        return total

    @classmethod
    def class_method(cls, flag=True):
        label = cls.kind
        H.ready("classmethod"); LOCK.acquire()
        return label

    @staticmethod
    def static_method(a, b):
        s = a + b
        H.ready("staticmethod"); LOCK.acquire()
        return s


def recurse(depth):
    if depth > 1:
        return recurse(depth - 1)
    H.ready("recursion"); LOCK.acquire()


def outer_with_closure(base):
    captured = base + 1
    shared = ["cell", "value"]

    def inner_closure(extra):
        local_in_inner = captured + extra
        H.ready("closure"); LOCK.acquire()
        return local_in_inner, shared

    return inner_closure(10)


def in_list_comprehension(n):
    before = "before comprehension"
    return [(H.ready("listcomp"), LOCK.acquire()) for item in range(n)]


def generator_body(limit):
    for i in range(limit):
        if i == 2:
            H.ready("generator"); LOCK.acquire()
        yield i * i


def consume_generator():
    total = 0
    for value in generator_body(5):
        total += value
    return total


async def coroutine_leaf(tag):
    await asyncio.sleep(0)
    H.ready("asyncio"); time.sleep(10 ** 6)
    return tag


async def coroutine_root():
    result = await coroutine_leaf("leaf-tag")
    return result


def run_event_loop():
    if hasattr(asyncio, "run"):
        asyncio.run(coroutine_root())
    else:  # 3.6
        asyncio.new_event_loop().run_until_complete(coroutine_root())


PSEUDO_SOURCE = '''
def pseudo_function(x):
    doubled = x * 2
    READY("exec-pseudo"); LOCK.acquire()
    return doubled

pseudo_function(21)
'''


def run_exec_code():
    namespace = {"READY": H.ready, "LOCK": LOCK}
    exec(compile(PSEUDO_SOURCE, "<pseudo-file>", "exec"), namespace)


UNICODE_SOURCE = '''# -*- coding: utf-8 -*-
READY = None
LOCK = None


def wärme_ünïcode(grad):
    température = "chaud ☀ %d°" % grad
    READY("unicode"); LOCK.acquire()
    return température
'''


def load_unicode_module():
    directory = os.path.join(WORKDIR, "ünïcödé_dir")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "modé.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(UNICODE_SOURCE)
    sys.path.insert(0, directory)
    import importlib
    module = importlib.import_module("modé")
    module.READY = H.ready
    module.LOCK = LOCK
    return module


def sleeper(seconds):
    H.ready("sleep"); time.sleep(seconds)


def pipe_reader(fd):
    H.ready("pipe-read"); os.read(fd, 1)


def locals_zoo(arg_int, arg_str="défaut", *rest, kw_only=None, **options):
    none = None
    yes, no = True, False
    zero, neg, small = 0, -17, 255
    digit_edge = 2 ** 30
    digit_edge_neg = -(2 ** 30)
    big = 2 ** 64 + 1
    bigneg = -(2 ** 100)
    huge = 2 ** 4000
    fl, fl_neg_zero, fl_big, fl_tiny = 0.1, -0.0, 1e300, 5e-324
    fl_int, fl_inf, fl_nan = 3.0, float("-inf"), float("nan")
    cplx, cplx2, imag = 1 + 2j, complex(-0.0, -1.5), 1j
    s_empty = ""
    s_ascii = "hello world"
    s_quotes = 'it\'s "quoted"'
    s_single = "'"
    s_both = "'\""
    s_escapes = "tab\tnl\ncr\rnul\x00bs\\del\x7fesc\x1b"
    s_latin1 = "é ü ÿ ß"
    s_bmp = "中文 ☃ \u200b \u00a0 \u2028"
    s_astral = "😀 𝄞 \U0010ffff"
    s_surrogate = "a\ud800b"
    s_long = "x" * 2000
    b_empty = b""
    b_mixed = b"\x00\xff\"'abc\n\t\\\x7f"
    b_quote = b"'"
    tup0 = ()
    tup1 = (1,)
    tup = (1, "a", None, (2,), ())
    lst0 = []
    lst = [1, 2.5, "x", [3, [4]], (5,)]
    dct0 = {}
    dct = {"a": 1, 2: "b", (1, 2): [None], None: {}, 3.5: frozenset()}
    st0 = set()
    st = {1, 2, 3}
    st_str = {"alpha", "beta", "gamma"}
    fs0 = frozenset()
    fs = frozenset({10, 20})
    nested = {"k": [1, (2, {3: frozenset({4})})], "e": [], "t": ((),)}
    plain = Plain()
    self_ref = [1]
    self_ref.append(self_ref)
    big_list = list(range(1000))
    other_type = Plain
    other_function = sleeper
    other_module = os
    other_range = range(3)
    other_bytearray = bytearray(b"ab")
    other_ellipsis = ...
    H.ready("locals-zoo"); LOCK.acquire()


def busy_step(i):
    return (i * 7 + 3) % 1000003


def busy_loop():
    counter = 0
    H.ready("busy", busy_codes=(busy_loop.__code__, busy_step.__code__))
    while True:
        counter = busy_step(counter)


def unnamed_target():
    H.ready("default-name"); LOCK.acquire()


read_fd, write_fd = os.pipe()
unicode_module = load_unicode_module()

SHAPES = [
    ("recursion-500", recurse, (500,)),
    ("method", Worker("w").method, (21,)),
    ("classmethod", Worker.class_method, ()),
    ("staticmethod", Worker.static_method, (1, 2)),
    ("closure", outer_with_closure, (5,)),
    ("lambda", lambda: (H.ready("lambda"), LOCK.acquire()), ()),
    ("listcomp", in_list_comprehension, (3,)),
    ("generator", consume_generator, ()),
    ("asyncio", run_event_loop, ()),
    ("exec-pseudo", run_exec_code, ()),
    ("ünïcode thread ☃", unicode_module.wärme_ünïcode, (21,)),
    ("sleeper", sleeper, (10 ** 6,)),
    ("pipe-reader", pipe_reader, (read_fd,)),
    ("locals-zoo", locals_zoo, (7, "s", "extra1", "extra2")),
]
if WITH_BUSY:
    SHAPES.append(("busy", busy_loop, ()))

H.expected = len(SHAPES) + 1
for thread_name, func, func_args in SHAPES:
    kwargs = {"kw_only": "kw", "opt": {"x": 1}} if func is locals_zoo else {}
    threading.Thread(target=func, args=func_args, kwargs=kwargs, name=thread_name, daemon=True).start()
threading.Thread(target=unnamed_target, daemon=True).start()   # default name "Thread-N (...)"

module_level_value = "module"
H.write_truth(TRUTH_PATH, {"workdir": WORKDIR}); MAIN_BLOCK.acquire()
