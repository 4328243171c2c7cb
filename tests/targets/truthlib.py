"""The target side of the end-to-end tests: threads report what they are doing.

A target starts worker threads; each worker calls ``H.ready(role)`` and, ON THE
SAME LINE, a blocking C function (``H.ready("x"); LOCK.acquire()``), so the
Python stack a snapshot sees while it is blocked is exactly the stack at the
moment it reported.  The main thread then calls ``H.write_truth(path)`` (again
followed on the same line by a blocking call): it waits until every worker has
left ``ready()`` and sits on its reporting line, reads ``sys._current_frames()``
and writes TRUTH, a JSON document, atomically to ``path``.

Runs unchanged on CPython 2.7 and 3.6 to 3.15 and imports nothing outside the stdlib
(before 3.8 the OS thread id comes from the gettid system call through ctypes).

TRUTH format::

    {"pid", "python_version", "executable", "exe_realpath", "argv",
     "threads": [{"thread_id", "native_id", "name", "role", "busy",
                  "frames": [{"function", "filename", "line", "kind",
                              "locals": {name: {"repr", "id", "arg", "check"}} | null}],
                  "busy_functions": [[function, filename], ...],  # busy threads only:
                  "allowed": [[function, filename], ...]          # where it may be
                 }]}

``frames`` are innermost first.  ``function`` follows the rule the inspector
uses (like py-spy): ``co_qualname`` on 3.11+; on older versions ``co_name``,
prefixed with ``Class.`` when the first argument is ``self`` (its type's
``__name__``) or ``cls`` (its ``__name__``).  ``locals`` is null for frames
that are not function frames (module, class body, exec'd module code).
Each local's ``check`` tells the test how exactly it can be compared:

* ``exact``: the repr is reproducible from memory alone (None, bool, int,
  float, complex, str, bytes, tuple/list/dict/set/frozenset of such, objects
  with the default ``object.__repr__``) and at most 1024 characters long;
* ``opaque``: the type has its own ``__repr__`` (Python code or a C repr the
  inspector may not replicate): ``repr`` is CPython's, ``default_repr`` the
  ``object.__repr__`` form, ``type`` the type's ``__name__``;
* ``long``: the repr is longer than 1024 characters (or cannot be built).
"""
import io
import json
import os
import sys
import threading
import time

_monotonic = getattr(time, "monotonic", time.time)
try:
    _get_ident = threading.get_ident
except AttributeError:  # 2.7
    import thread as _thread_module
    _get_ident = _thread_module.get_ident


def native_id():
    """The calling thread's OS id (``threading.get_native_id`` from 3.8, gettid before)."""
    get = getattr(threading, "get_native_id", None)
    if get is not None:
        return get()
    import ctypes
    return ctypes.CDLL(None, use_errno=True).syscall(186)  # SYS_gettid on x86-64


def _main_thread_ident():
    main = getattr(threading, "main_thread", None)
    if main is not None:
        return main().ident
    return [t for t in threading.enumerate() if isinstance(t, threading._MainThread)][0].ident

CO_OPTIMIZED = 0x1
CO_NEWLOCALS = 0x2
CO_VARARGS = 0x4
CO_VARKEYWORDS = 0x8
MAX_EXACT_REPR = 1024

EXACT_SCALARS = (type(None), bool, int, float, complex, str, bytes)
if sys.version_info[0] == 2:
    EXACT_SCALARS += (long, unicode)  # noqa: F821 - 2.7 names
CONTAINERS = (tuple, list, set, frozenset)


def function_name(frame):
    """The function name the inspector is expected to print for ``frame``."""
    code = frame.f_code
    qualname = getattr(code, "co_qualname", None)
    if qualname is not None:
        return qualname
    name = code.co_name
    if code.co_argcount > 0 and code.co_varnames:
        first = code.co_varnames[0]
        if first in ("self", "cls"):
            try:
                value = frame.f_locals[first]
            except KeyError:
                return name
            if first == "self":
                return type(value).__name__ + "." + name
            if isinstance(value, type):
                return value.__name__ + "." + name
    return name


def argument_names(code):
    n = code.co_argcount + getattr(code, "co_kwonlyargcount", 0)
    if code.co_flags & CO_VARARGS:
        n += 1
    if code.co_flags & CO_VARKEYWORDS:
        n += 1
    return set(code.co_varnames[:n])


def _exact(value, seen):
    t = type(value)
    if t in EXACT_SCALARS:
        return True
    if id(value) in seen:          # self-referencing container: repr prints [...]
        return True
    if t in CONTAINERS or t is dict:
        seen = seen | {id(value)}
        items = value.items() if t is dict else ((v, None) for v in value)
        for k, v in items:
            if not _exact(k, seen) or (v is not None and not _exact(v, seen)):
                return False
        return True
    if sys.version_info[0] == 2:
        import types
        if t is types.ClassType:
            return True     # <class mod.C at 0x...>
        if t is types.InstanceType and not hasattr(value.__class__, "__repr__"):
            return True     # <mod.C instance at 0x...>
    return t.__repr__ is object.__repr__


def describe_value(value):
    try:
        r = repr(value)
    except Exception as exc:        # e.g. ints beyond sys.get_int_max_str_digits()
        return {"repr": None, "check": "long", "error": type(exc).__name__}
    out = {"repr": r}
    if len(r) > MAX_EXACT_REPR:
        out["check"] = "long"
    elif _exact(value, frozenset()):
        out["check"] = "exact"
    else:
        out["check"] = "opaque"
        out["default_repr"] = object.__repr__(value)
        out["type"] = type(value).__name__
    return out


def describe_frame(frame):
    code = frame.f_code
    entry = {"function": function_name(frame), "filename": code.co_filename,
             "line": frame.f_lineno, "code_name": code.co_name}
    # 2.7 class bodies have CO_NEWLOCALS but not CO_OPTIMIZED: a namespace dict, no fast locals
    namespace = sys.version_info[0] == 2 and not code.co_flags & CO_OPTIMIZED
    if not code.co_flags & CO_NEWLOCALS or namespace:
        entry["kind"] = "module-level"      # module, class body or exec'd code: no fast locals
        entry["locals"] = None
        return entry
    entry["kind"] = "function"
    args = argument_names(code)
    positional = set(code.co_varnames[:code.co_argcount])
    local_vars = {}
    # f_locals: a fresh dict (<= 3.12) or a write-through proxy (3.13+); read it only.
    for name, value in list(frame.f_locals.items()):
        d = describe_value(value)
        d["id"] = id(value)
        d["arg"] = name in args                 # any parameter, *args and **kwargs included
        d["positional"] = name in positional    # py-spy's notion: index < co_argcount
        local_vars[name] = d
    entry["locals"] = local_vars
    return entry


def _os_thread_name(native_id):
    """The kernel's name of a thread of this process (/proc/self/task/TID/comm)."""
    try:
        with open("/proc/self/task/%d/comm" % native_id, "rb") as fh:
            return fh.read().rstrip(b"\n").decode("utf-8", "replace")
    except (OSError, TypeError):
        return None


class Harness:
    """Bookkeeping shared by the worker threads and the reporting thread."""

    def __init__(self, expected_workers=None):
        self.expected = expected_workers     # set before the workers start
        self._lock = threading.Lock()
        self._reports = {}      # ident -> dict(role, native_id, code, line, busy, allowed)
        self._all_in = threading.Event()

    # ---- worker side --------------------------------------------------
    def ready(self, role, busy_codes=()):
        """Called by a worker right before it blocks, on the same source line."""
        caller = sys._getframe(1)
        report = {"role": role, "native_id": native_id(),
                  "code": caller.f_code, "line": caller.f_lineno,
                  "busy": bool(busy_codes), "busy_codes": list(busy_codes)}
        with self._lock:
            self._reports[_get_ident()] = report
            if len(self._reports) >= self.expected:
                self._all_in.set()

    # ---- reporter side --------------------------------------------------
    def _settled(self, frames):
        """Every non-busy worker sits on its reporting line, out of ready()."""
        ready_code = Harness.ready.__code__
        for ident, report in self._reports.items():
            frame = frames.get(ident)
            if frame is None:
                return False
            f = frame
            while f is not None:
                if f.f_code is ready_code:
                    return False
                f = f.f_back
            if report["busy"]:
                continue
            if frame.f_code is not report["code"] or frame.f_lineno != report["line"]:
                return False
        return True

    def collect(self, reporter_frame, timeout=60.0):
        """TRUTH of every thread; the calling thread is reported from ``reporter_frame`` out."""
        if not self._all_in.wait(timeout):
            raise RuntimeError("only %d of %d workers became ready: %s" % (
                len(self._reports), self.expected,
                sorted(r["role"] for r in self._reports.values())))
        me = _get_ident()
        deadline = _monotonic() + timeout
        while True:
            frames = sys._current_frames()
            if self._settled(frames):
                break
            if _monotonic() > deadline:
                raise RuntimeError("workers did not settle on their reporting lines")
            del frames
            time.sleep(0.005)
        names = {t.ident: t.name for t in threading.enumerate()}
        threads = []
        for ident, frame in frames.items():
            if ident == me:
                frame = reporter_frame
                report = {"role": "main" if me == _main_thread_ident() else "reporter",
                          "native_id": native_id(), "busy": False, "busy_codes": []}
            else:
                report = self._reports.get(ident)
                if report is None:
                    raise RuntimeError("thread %#x did not report (%s)" % (ident, names.get(ident)))
            stack = []
            f = frame
            while f is not None:
                stack.append(describe_frame(f))
                f = f.f_back
            entry = {"thread_id": ident, "native_id": report["native_id"],
                     "name": names.get(ident), "os_name": _os_thread_name(report["native_id"]),
                     "role": report["role"],
                     "busy": report["busy"], "frames": stack}
            if report["busy"]:
                busy = {(getattr(code, "co_qualname", code.co_name), code.co_filename)
                        for code in report["busy_codes"]}
                entry["busy_functions"] = sorted(busy)
                entry["allowed"] = sorted(busy | {(fr["function"], fr["filename"]) for fr in stack})
            threads.append(entry)
        return threads

    def write_truth(self, path, extra=None):
        """Collect TRUTH and write it atomically; call as ``H.write_truth(p); BLOCK.acquire()``."""
        reporter_frame = sys._getframe(1)
        threads = self.collect(reporter_frame)
        try:
            exe_real = os.path.realpath("/proc/self/exe")
        except OSError:
            exe_real = None
        doc = {"pid": os.getpid(), "python_version": "%d.%d.%d" % sys.version_info[:3],
               "version_info": list(sys.version_info[:3]), "executable": sys.executable,
               "exe_realpath": exe_real, "argv": sys.argv, "threads": threads}
        if extra:
            doc.update(extra)
        tmp = path + ".tmp"
        text = json.dumps(doc, indent=1, ensure_ascii=True)
        with io.open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text if isinstance(text, type(u"")) else text.decode("ascii"))
        os.rename(tmp, path)


def blocked_lock():
    """A lock that is already held: ``acquire()`` on it blocks forever."""
    lock = threading.Lock()
    lock.acquire()
    return lock
