"""Engine reliability: what the target pays for a snapshot, and what survives a changing target.

* the pause copies raw words only: thread names and locals' reprs are read
  after the detach (a wrapper Process records which reads happen while paused),
  and the pause makes the same reads with and without locals;
* the main interpreter is read while subinterpreters are created and destroyed;
* a 1,000-thread target under ``ulimit -n 64`` is dumped and recorded
  (per-thread descriptors are capped at a quarter of the limit).

Run:  python -m pytest tests/test_reliability.py -k "3.8 or 3.12 or 3.14"
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

import pythons
from pythons import run_tool, target_script


@contextmanager
def pause_target(python, tmp_path, threads=10, depth=0):
    ready = str(tmp_path / "ready")
    proc = subprocess.Popen([python.path, target_script("pause_target.py"), ready, "--threads", str(threads),
                             "--depth", str(depth)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            assert proc.poll() is None, "pause_target exited early"
            assert time.monotonic() < deadline, "pause_target did not start"
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait()


class WatchedProcess:
    """A Process that knows whether it is paused, so object reads made inside the pause can be counted."""

    def __init__(self, inner):
        self._inner = inner
        self.inside = False
        self.reads_inside = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def read(self, address, size):
        if self.inside:
            self.reads_inside += 1
        return self._inner.read(address, size)

    def read_many(self, requests):
        if self.inside:
            self.reads_inside += 1
        return self._inner.read_many(requests)

    @contextmanager
    def paused(self):
        with self._inner.paused() as stopped:
            self.inside = True
            try:
                yield stopped
            finally:
                self.inside = False


def _spy(obj, names, log, watched):
    for name in names:
        original = getattr(obj, name)

        def wrapper(*a, _original=original, _name=name, **kw):
            if watched.inside:
                log.append(_name)
            return _original(*a, **kw)
        setattr(obj, name, wrapper)


def test_names_and_reprs_are_read_after_the_pause(python, tmp_path):
    from snapshot.process.live import LiveProcess
    from snapshot.target import Target
    with pause_target(python, tmp_path, threads=20, depth=50) as proc:
        watched = WatchedProcess(LiveProcess(proc.pid))
        target = Target(watched)
        # code objects seen for the first time are read (once, cached: they are immutable) inside
        # the pause, since the walk needs their slot counts; warm the cache, then watch
        target.snapshot(locals=True)
        inside = []
        _spy(target.objects, ("repr", "string", "dict_items", "dict_get", "getattr", "type_name", "type_addr"),
             inside, watched)
        _spy(target.thread_facts, ("names",), inside, watched)
        _spy(target.frame_builder, ("frame",), inside, watched)
        snap = target.snapshot(locals=True)
        names = {t.name for t in snap.threads}
        assert "waiter-3" in names and "deep" in names, names
        reprs = [l.repr for t in snap.threads for f in t.frames for l in f.locals]
        assert any("waiter 3" in r for r in reprs), "locals were rendered"
        assert inside == [], "read while the target was paused: %s" % sorted(set(inside))
        # the pause's reads do not grow with the locals asked for (slot words come with the frames)
        watched.reads_inside = 0
        target.snapshot(locals=False)
        without = watched.reads_inside
        watched.reads_inside = 0
        target.snapshot(locals=True)
        with_locals = watched.reads_inside
        # the pause copies raw frame memory only (slots come with it, with or without locals):
        # the same reads inside the pause either way, and a few batched reads, not one per thread
        assert with_locals == without, (without, with_locals)
        assert without < 20, "reads inside the pause grow with the threads: %d" % without
        target.close()


def test_main_interpreter_while_subinterpreters_come_and_go(python, tmp_path):
    from snapshot.target import attach
    ready = str(tmp_path / "ready.json")
    proc = subprocess.Popen([python.path, target_script("subinterp_churn_target.py"), ready], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with open(ready) as fh:
            truth = json.load(fh)
        if truth["module"] is None:
            pytest.skip("%s has no subinterpreter module" % python.id)
        target = attach(proc.pid)
        seen = errors = 0
        for _ in range(40):
            try:
                snap = target.snapshot()
            except Exception as e:  # noqa: BLE001 - counted; must be typed (SnapshotError)
                from snapshot.errors import SnapshotError
                assert isinstance(e, SnapshotError), "untyped error: %r" % e
                errors += 1
                continue
            seen += any(t.thread_id == truth["main_thread_id"] for t in snap.threads)
        target.close()
        assert seen >= 30, "the main thread was in %d of 40 snapshots (%d errors)" % (seen, errors)
    finally:
        proc.kill()
        proc.wait()


def _low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_thousand_threads_under_ulimit_64(once_python, tmp_path):
    with pause_target(once_python, tmp_path, threads=1000) as proc:
        r = run_tool(["dump", "--pid", proc.pid], preexec_fn=_low_fd_limit, timeout=180)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 0 and "Traceback" not in err, err[-2000:]
        assert r.stdout.decode().count("waiter-") == 1000
        out = tmp_path / "p.txt"
        r = run_tool(["record", "--pid", proc.pid, "-d", "1", "-r", "20", "--idle", "-f", "raw", "-o", out],
                     preexec_fn=_low_fd_limit, timeout=180)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 0 and "Traceback" not in err, err[-2000:]
        assert "waiter" in out.read_text()
        assert pythons.stopped_or_traced(proc.pid) == []


def test_task_states_keep_a_quarter_of_the_limit():
    from snapshot.process.tasks import TaskStates, _descriptor_budget
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        assert _descriptor_budget(TaskStates.MAX_OPEN) == 16
        states = TaskStates(os.getpid())
        assert states.max_open == 16
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_in_syscall_from_ptrace_agrees_with_proc(once_python, tmp_path):
    """The pause asks ptrace (one word per thread) whether each thread was in a system call;
    /proc/TID/syscall must say the same for a spinning main thread and sleeping threads."""
    from snapshot.process.live import LiveProcess
    hb = str(tmp_path / "hb")
    t = pythons.Target(once_python.path, target_script("heartbeat_target.py"), [hb, "--threads", "6"],
                       workdir=str(tmp_path))
    try:
        t.wait_for_file(hb, 60)
        process = LiveProcess(t.pid)
        running_seen = 0
        for _ in range(20):
            with process.paused() as stopped:
                fast = process.in_syscall(stopped)
                slow = process.tasks.in_syscall(stopped)
            assert fast == slow
            running_seen += sum(1 for v in fast.values() if not v)
        assert running_seen, "the spinning main thread was never seen outside a system call"
        process.close()
    finally:
        t.stop()


class _FailingTarget:
    """A target whose reads fail most of the time (as after its interpreter state went away)."""

    pid = 4242
    python_version = "3.12.0"
    command_line = ("python", "app.py")

    def __init__(self, real, fail_every_but):
        self.real = real
        self.pid = real.pid
        self.n = 0
        self.fail_every_but = fail_every_but

    def sample(self, blocking=True, **kwargs):
        from snapshot.errors import CorruptDataError
        self.n += 1
        if self.n % self.fail_every_but:
            raise CorruptDataError("the interpreter state at 0x1000 went away")
        return self.real.sample(blocking, **kwargs)

    def close(self):
        pass


@pytest.mark.parametrize("fail_every_but,status", [(10, 7), (1, 0)], ids=["mostly-failed", "healthy"])
def test_record_where_most_passes_failed_says_so(once_python, tmp_path, fail_every_but, status):
    import io
    from repl.dispatch import CLI, Dispatcher
    from repl.session import Session
    from snapshot.target import attach
    with pause_target(once_python, tmp_path, threads=2) as proc:
        real = attach(proc.pid)
        out, err = io.StringIO(), io.StringIO()
        session = Session(out=out, err=err)
        session.get_target = lambda pid=None: _FailingTarget(real, fail_every_but)
        code = Dispatcher(CLI).run_argv(session, "record", ["--pid", str(proc.pid), "-d", "1", "-r", "50", "--idle",
                                                             "-o", str(tmp_path / "p.txt"), "-f", "raw"])
        real.close()
    text = err.getvalue()
    assert code == status, text
    if status:
        assert "sampling passes failed: the interpreter state at 0x1000 went away" in text, text
        assert "hint:" in text
    assert (tmp_path / "p.txt").exists()


#: Drives the console entry (repl.entry, as the generated pyspy-repl script does) and sends
#: itself SIGINT at one early point: right after repl.entry is imported (where the script then
#: runs its own re.sub), or the moment a named module starts being imported.
EARLY_SIGINT_DRIVER = r"""
import os, signal, sys
at = os.environ["PYSPY_TEST_SIGINT_AT"]
sys.argv = ["pyspy-repl"] + sys.argv[1:]
import repl.entry
if at == "entry":
    os.kill(os.getpid(), signal.SIGINT)
    import re
    re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])   # what the generated script does next
else:
    class Hook:
        def find_spec(self, name, path=None, target=None):
            if name == at:
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None
    sys.meta_path.insert(0, Hook())
repl.entry.console_main()
"""


@pytest.mark.parametrize("at", ["entry", "repl.interrupts", "repl.streams", "repl.dispatch",
                                "snapshot.target", "snapshot.sampler"])
def test_early_ctrl_c_is_one_line_and_status_130(once_python, tmp_path, at):
    """Ctrl-C at early points of `record` (before the handler, during the imports, while attaching,
    before the first sample): no traceback, status 130, nothing written, and it is not swallowed."""
    out = tmp_path / "x.json"
    with pause_target(once_python, tmp_path, threads=2) as proc:
        env = dict(pythons.tool_env(), PYSPY_TEST_SIGINT_AT=at)
        r = subprocess.run([sys.executable, "-c", EARLY_SIGINT_DRIVER, "record", "-d", "30", "--pid",
                            str(proc.pid), "-o", str(out)], capture_output=True, timeout=25, cwd=pythons.REPO,
                           env=env)
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-2000:]
    assert r.returncode == 130, (r.returncode, err[-2000:])
    assert "interrupted" in err, err[-2000:]
    assert not out.exists(), "an interrupted record with no samples must not write %s" % out


#: A Ctrl-C that lands before the first statement of repl.entry: Python's own start-up (its
#: streams, ``site`` and its ``.pth`` files), or the generated script's import line itself.
BEFORE_OUR_CODE = ("Failed to import the site module", "<frozen site>", "can't initialize sys standard streams",
                   "    from repl.entry import console_main\nKeyboardInterrupt")


def test_ctrl_c_early_in_the_console_script(once_python, tmp_path):
    """The real console script, SIGINT at random early moments: a traceback only from before our
    first statement (Python's start-up, site), never from ours; every run ends well before its
    duration, with status 130 (or death by SIGINT before Python installed its handler) and
    nothing written, or, once sampling began, status 0 and what was recorded written."""
    import random
    import shutil
    import signal as signals
    script = shutil.which("pyspy-repl", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("no pyspy-repl console script beside %s (pip install -e . makes one)" % sys.executable)
    rng = random.Random(12)
    with pause_target(once_python, tmp_path, threads=2) as proc:
        for i in range(6):
            out = tmp_path / ("x%d.json" % i)
            p = subprocess.Popen([script, "record", "-d", "30", "--pid", str(proc.pid), "-o", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=pythons.REPO,
                                 env=pythons.tool_env())
            time.sleep(rng.uniform(0, 0.6))
            p.send_signal(signals.SIGINT)
            pythons.wait_or_kill(p, 20)
            err = p.stderr.read().decode("utf-8", "replace")
            p.stderr.close()
            if any(mark in err for mark in BEFORE_OUR_CODE):
                continue  # Python's own start-up, or the script's import of repl.entry: before our code runs
            assert "Traceback" not in err, err[-2000:]
            if p.returncode == 0:
                # sampling had begun: Ctrl-C ends the recording and writes what it has
                assert "(interrupted)" in err and out.exists(), err[-2000:]
            else:
                assert p.returncode in (130, -signals.SIGINT), (p.returncode, err[-2000:])
                assert not out.exists(), "an interrupted record with no pass must not write %s" % out


def test_pause_holds_gc_and_restores_priority(once_python, tmp_path):
    """Inside a pause the tool's garbage collector is off and, where the tool may raise it, its
    priority is higher; after it both are as before, and the target runs again."""
    import gc
    from snapshot.process.pause import paused
    with pause_target(once_python, tmp_path, threads=2) as proc:
        nice_before = os.getpriority(os.PRIO_PROCESS, 0)
        assert gc.isenabled()
        with paused(proc.pid) as stopped:
            assert stopped, "nothing was paused"
            assert not gc.isenabled(), "the collector must be held inside the pause"
            inside = os.getpriority(os.PRIO_PROCESS, 0)
            if os.geteuid() == 0:
                assert inside < nice_before or nice_before == -20, (nice_before, inside)
        assert gc.isenabled(), "the collector must be back after the pause"
        assert os.getpriority(os.PRIO_PROCESS, 0) == nice_before
        deadline = time.monotonic() + 10
        while pythons.stopped_or_traced(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pythons.stopped_or_traced(proc.pid), "the target must run again"
