# -*- coding: utf-8 -*-
"""The `dump` end-to-end target in CPython 2.7 syntax (tests/targets/dump_target.py for 3.x).

    python2.7 dump_target.py TRUTH.json [--workdir DIR] [--no-busy]

The same protocol and, where 2.7 has them, the same shapes and roles as
dump_target.py; instead of the asyncio thread (2.7 has no asyncio) and the
non-ASCII function name (2.7 identifiers are ASCII), it has an old-style
class method and a module loaded from a non-ASCII path.  The locals zoo adds
2.7's own values: PyIntObject ints, longs, byte strings and unicode.

Every blocking call sits on the same line as the ``H.ready(...)`` before it.
"""
import io
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import truthlib  # noqa: E402

args = sys.argv[1:]
if not args or args[0].startswith("-"):
    sys.exit(__doc__)
TRUTH_PATH = os.path.abspath(args[0])
WORKDIR = args[args.index("--workdir") + 1] if "--workdir" in args else tempfile.mkdtemp(prefix="dump-target-")
WITH_BUSY = "--no-busy" not in args

LOCK = truthlib.blocked_lock()
MAIN_BLOCK = truthlib.blocked_lock()
H = truthlib.Harness()


class Plain(object):
    """An object with the default repr."""

    def __init__(self):
        self.payload = [1, 2, 3]


class OldStyle:
    """A classic class (no object base)."""

    def wait_here(self, n):
        twice = n * 2
        H.ready("old-style"); LOCK.acquire()
        return twice


class Worker(object):
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


UNICODE_SOURCE = u'''# -*- coding: utf-8 -*-
READY = None
LOCK = None


def warm_unicode(grad):
    temperature = u"chaud \\u2600 %d\\xb0" % grad
    READY("unicode"); LOCK.acquire()
    return temperature
'''


def load_unicode_module():
    directory = os.path.join(WORKDIR, u"ünïcödé_dir".encode("utf-8"))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    path = os.path.join(directory, "mode_unicode.py")
    with io.open(path, "w", encoding="utf-8") as fh:
        fh.write(UNICODE_SOURCE)
    sys.path.insert(0, directory)
    import importlib
    module = importlib.import_module("mode_unicode")
    module.READY = H.ready
    module.LOCK = LOCK
    return module


def sleeper(seconds):
    H.ready("sleep"); time.sleep(seconds)


def pipe_reader(fd):
    H.ready("pipe-read"); os.read(fd, 1)


def locals_zoo(arg_int, arg_str="défaut", *rest, **options):
    none = None
    yes, no = True, False
    zero, neg, small = 0, -17, 255
    digit_edge = 2 ** 30
    digit_edge_neg = -(2 ** 30)
    int_max = sys.maxint
    int_min = -sys.maxint - 1
    long_small, long_zero, long_neg = 7L, 0L, -5L
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
    s_utf8_bytes = "é ü ÿ ß"
    s_high = "\x80\xff\xfe"
    u_empty = u""
    u_ascii = u"hello"
    u_quotes = u'it\'s "quoted"'
    u_latin1 = u"é ü ÿ ß"
    u_bmp = u"中文 ☃ \u200b \u00a0 \u2028"
    u_astral = u"\U0001f600 \U0001d11e \U0010ffff"
    u_surrogate = u"a\ud800b"
    u_escapes = u"tab\tnl\nnul\x00del\x7f"
    s_long = "x" * 2000
    tup0 = ()
    tup1 = (1,)
    tup = (1, "a", None, (2,), (), u"u")
    lst0 = []
    lst = [1, 2.5, "x", [3, [4]], (5,), 6L]
    dct0 = {}
    dct = {"a": 1, 2: "b", (1, 2): [None], None: {}, 3.5: frozenset(), u"k": 9L}
    st0 = set()
    st = {1, 2, 3}
    st_str = {"alpha", "beta", "gamma"}
    fs0 = frozenset()
    fs = frozenset({10, 20})
    nested = {"k": [1, (2, {3: frozenset({4})})], "e": [], "t": ((),)}
    plain = Plain()
    old_instance = OldStyle()
    old_class = OldStyle
    self_ref = [1]
    self_ref.append(self_ref)
    big_list = list(range(1000))
    other_type = Plain
    other_builtin_type = int
    other_function = sleeper
    other_module = os
    other_range = xrange(3)  # noqa: F821
    other_bytearray = bytearray(b"ab")
    other_ellipsis = Ellipsis
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
    ("old-style", OldStyle().wait_here, (4,)),
    ("exec-pseudo", run_exec_code, ()),
    ("ünïcode thread ☃", unicode_module.warm_unicode, (21,)),
    ("sleeper", sleeper, (10 ** 6,)),
    ("pipe-reader", pipe_reader, (read_fd,)),
    ("locals-zoo", locals_zoo, (7, "s", "extra1", "extra2")),
]
if WITH_BUSY:
    SHAPES.append(("busy", busy_loop, ()))

H.expected = len(SHAPES) + 1
for thread_name, func, func_args in SHAPES:
    kwargs = {"kw_only": "kw", "opt": {"x": 1}} if func is locals_zoo else {}
    t = threading.Thread(target=func, args=func_args, kwargs=kwargs, name=thread_name)
    t.daemon = True
    t.start()
t = threading.Thread(target=unnamed_target)   # default name "Thread-N"
t.daemon = True
t.start()

module_level_value = "module"
H.write_truth(TRUTH_PATH, {"workdir": WORKDIR}); MAIN_BLOCK.acquire()
