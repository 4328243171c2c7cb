"""pytest plugin: ``--hang-timeout SECONDS`` reports, from outside, the stacks of a test that hangs.

Registered through the ``pytest11`` entry point (or ``-p repl.pytest_plugin``).
Nothing happens unless ``--hang-timeout`` (or the ``hang_timeout(SECONDS)``
marker on a test) is given.

How it works, and why
---------------------
A process cannot ptrace itself, so the capture runs in a **watchdog process**:
``python -m repl.pytest_plugin --watchdog ...``, started once per pytest
process (per xdist worker) with pytest's real stderr (it is spawned while
output capturing is suspended, so its report reaches the terminal / CI log).
pytest tells it over a pipe when each test starts and ends (setup, call and
teardown together, like pytest-timeout).  When one test runs longer than the
limit, the watchdog:

1. captures the whole pytest process tree with ``snapshot.hang.capture_tree``
   (pytest itself, its subprocesses and multiprocessing workers, any Python
   version; stuck and waiting threads flagged), headed by the test's node id;
   writes it to stderr, ``--hang-report FILE`` (appended) and
   ``--hang-json FILE`` (a JSON list of reports);
2. sends SIGUSR2 to pytest: the plugin's handler fails the running test
   with ``Failed: hang timeout`` and the report text, and the session goes
   on with the next test (a blocked ``lock.acquire()``, ``join()``,
   ``queue.get()`` or ``time.sleep()`` in the main thread is interrupted by
   the signal);
3. if the test still has not finished ``--hang-kill-after`` seconds later (the
   main thread is blocked where signals are not checked, e.g. inside a C
   extension), it ends the pytest process tree (SIGTERM, then SIGKILL), as
   pytest-timeout's "thread" method does, so CI does not hang.

After a hang the threads of the failed test may still be deadlocked; as
they would keep the interpreter from exiting, pytest then leaves with
``os._exit(<pytest's exit status>)`` once its session finished and reported
(only when such non-daemon threads are left).
"""
from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

FIRE_SIGNAL = signal.SIGUSR2


def pytest_addoption(parser):
    group = parser.getgroup("pyspy-repl")
    group.addoption("--hang-timeout", type=float, default=None, metavar="SECONDS",
                    help="report the stacks of a test that runs longer than SECONDS, from outside, "
                         "then fail it (pyspy-repl)")
    group.addoption("--hang-kill-after", type=float, default=5.0, metavar="SECONDS",
                    help="end the pytest process tree if a timed-out test is still running SECONDS "
                         "after it was failed (default 5)")
    group.addoption("--hang-report", default=None, metavar="FILE", help="append hang reports to FILE")
    group.addoption("--hang-json", default=None, metavar="FILE", help="write hang reports as JSON to FILE")
    group.addoption("--hang-locals", action="store_true", default=False, help="include locals in hang reports")


def pytest_configure(config):
    config.addinivalue_line("markers", "hang_timeout(seconds): this test's --hang-timeout (0 disables)")
    # Registered always; the watchdog process only starts for the first test that has a
    # limit (--hang-timeout, or a hang_timeout marker).
    config.pluginmanager.register(HangWatchdog(config), "pyspy_repl_hang_watchdog")


class HangWatchdog:
    def __init__(self, config):
        self.config = config
        self.default = config.getoption("hang_timeout", None)
        self.kill_after = config.getoption("hang_kill_after", 5.0)
        self.proc = None
        self.seq = 0
        self.current = None        # (seq, nodeid) of the running test
        self.hung = []             # node ids failed by the watchdog
        self.exitstatus = None
        self.tmpdir = None
        self._old_handler = None

    # -- the watchdog process ----------------------------------------------------
    def _start(self):
        import subprocess
        import tempfile
        if self.proc is not None:
            return self.proc.poll() is None
        if threading.current_thread() is not threading.main_thread():
            return False
        self.tmpdir = tempfile.mkdtemp(prefix="pyspy-hang-")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        opt = self.config.getoption
        cmd = [sys.executable, "-m", "repl.pytest_plugin", "--watchdog", str(os.getpid()),
               str(int(FIRE_SIGNAL)), str(self.kill_after), self.tmpdir,
               opt("hang_report", None) or "", opt("hang_json", None) or "",
               "1" if opt("hang_locals", False) else "0"]
        capman = self.config.pluginmanager.getplugin("capturemanager")
        try:
            if capman is not None:
                with capman.global_and_fixture_disabled():   # inherit the real stderr
                    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env, close_fds=True)
            else:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env, close_fds=True)
        except OSError as e:
            sys.stderr.write("pyspy-repl: cannot start the hang watchdog: %s\n" % e)
            self.proc = None
            return False
        self._old_handler = signal.signal(FIRE_SIGNAL, self._on_fire)
        return True

    def _send(self, line: str) -> None:
        if self.proc is None or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write((line + "\n").encode("utf-8", "replace"))
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def _on_fire(self, signum, frame):
        current = self.current
        if current is None:
            return
        seq, nodeid = current
        self.hung.append(nodeid)
        text = ""
        try:
            with open(os.path.join(self.tmpdir, "report-%d.txt" % seq), encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            pass
        limit = self._limit_of(nodeid)
        pytest.fail("hang timeout: %s ran longer than %ss; its stacks, captured from outside by "
                    "pyspy-repl:\n%s" % (nodeid, limit, text), pytrace=False)

    def _limit_of(self, nodeid):
        return self._limits.get(nodeid, self.default) if hasattr(self, "_limits") else self.default

    # -- hooks -----------------------------------------------------------------------
    def _timeout_for(self, item):
        marker = item.get_closest_marker("hang_timeout")
        if marker is not None and marker.args:
            return float(marker.args[0])
        return self.default

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        limit = self._timeout_for(item)
        if not limit or limit <= 0 or not self._start():
            yield
            return
        self.seq += 1
        if not hasattr(self, "_limits"):
            self._limits = {}
        self._limits[item.nodeid] = limit
        self.current = (self.seq, item.nodeid)
        self._send("start %d %r %s" % (self.seq, float(limit), item.nodeid))
        try:
            yield
        finally:
            self.current = None
            self._send("stop %d" % self.seq)

    def pytest_sessionfinish(self, session, exitstatus):
        self.exitstatus = int(exitstatus)

    def pytest_unconfigure(self, config):
        if self.proc is not None:
            self._send("quit")
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
        if self._old_handler is not None:
            try:
                signal.signal(FIRE_SIGNAL, self._old_handler)
            except (ValueError, TypeError):
                pass
        if self.hung and _stuck_threads_left():
            # The hung test's threads are still deadlocked and would keep the interpreter
            # from exiting: leave now, with pytest's own status (the summary is printed).
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001
                    pass
            os._exit(self.exitstatus if self.exitstatus is not None else 1)


def _stuck_threads_left() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


# ---------------------------------------------------------------------------
# The watchdog process
# ---------------------------------------------------------------------------
def watchdog_main(argv) -> int:
    """``python -m repl.pytest_plugin --watchdog PYTEST_PID SIGNUM KILL_AFTER TMPDIR REPORT JSON LOCALS``."""
    import json
    import select
    import time

    pytest_pid, signum = int(argv[0]), int(argv[1])
    kill_after, tmpdir = float(argv[2]), argv[3]
    report_file, json_file, with_locals = argv[4] or None, argv[5] or None, argv[6] == "1"
    me = os.getpid()
    current = None          # (seq, deadline, limit, nodeid)
    fired = None            # (seq, kill_at, nodeid)
    reports = []
    stdin = sys.stdin.buffer
    buffer = b""
    while True:
        now = time.monotonic()
        wake = [t for t in (current[1] if current else None, fired[1] if fired else None) if t is not None]
        timeout = max(0.0, min(wake) - now) if wake else None
        ready, _, _ = select.select([stdin], [], [], timeout)
        if ready:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                return 0   # pytest is gone
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                words = raw.decode("utf-8", "replace").split(" ", 3)
                if words[0] == "start" and len(words) == 4:
                    limit = float(words[2])
                    current = (int(words[1]), time.monotonic() + limit, limit, words[3])
                elif words[0] == "stop":
                    if current and str(current[0]) == words[1]:
                        current = None
                    if fired and str(fired[0]) == words[1]:
                        fired = None
                elif words[0] == "quit":
                    return 0
            continue
        now = time.monotonic()
        if current is not None and now >= current[1]:
            seq, _, limit, nodeid = current
            current = None
            report = _capture(pytest_pid, me, nodeid, limit, with_locals)
            text = ""
            if report is not None:
                from repl.hangreport import text as report_text
                text = report_text(report, show_locals=with_locals)
                reports.append(report.to_dict())
            else:
                text = "pyspy-repl: TEST TIMEOUT -- %s (capture failed)\n" % nodeid
            for path, data in (("report-%d.txt" % seq, text),):
                try:
                    with open(os.path.join(tmpdir, path), "w", encoding="utf-8") as fh:
                        fh.write(data)
                except OSError:
                    pass
            _write(sys.stderr, "\n" + text)
            if report_file:
                _append(report_file, text)
            if json_file:
                try:
                    with open(json_file, "w", encoding="utf-8") as fh:
                        json.dump(reports, fh, indent=2, ensure_ascii=False)
                except OSError:
                    pass
            if not _signal_main_thread(pytest_pid, signum):
                return 0
            fired = (seq, time.monotonic() + kill_after, nodeid)
        elif fired is not None and now >= fired[1]:
            from repl.supervise import terminate_tree
            _write(sys.stderr, "pyspy-repl: %s did not stop %.1f s after it was failed; ending the pytest "
                               "process tree (pid %d)\n" % (fired[2], kill_after, pytest_pid))
            result = terminate_tree(pytest_pid, kill_after=kill_after, exclude=(me,))
            _write(sys.stderr, "pyspy-repl: %s\n" % result.describe())
            return 0


def _signal_main_thread(pid: int, signum: int) -> bool:
    """Send ``signum`` to the main thread of ``pid`` (tgkill), not to the process.

    A process-directed signal may be delivered to any thread; only if the main
    thread gets it is its blocking call (lock.acquire, join...) interrupted so
    that the Python handler can run there.
    """
    import ctypes
    import platform
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tgkill = getattr(libc, "tgkill", None)
        if tgkill is not None:
            result = tgkill(pid, pid, signum)
        else:
            number = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
            result = libc.syscall(number, pid, pid, signum) if number else -1
        if result == 0:
            return True
    except (OSError, AttributeError):
        pass
    try:
        os.kill(pid, signum)
        return True
    except OSError:
        return False


def _capture(pytest_pid, me, nodeid, limit, with_locals):
    try:
        from snapshot.hang import capture_tree
        return capture_tree(pytest_pid, reason="pytest", exclude=(me,), limit=limit, title=nodeid,
                            locals=with_locals)
    except Exception as e:  # noqa: BLE001
        _write(sys.stderr, "pyspy-repl: capture of pid %d failed: %s: %s\n" % (pytest_pid, type(e).__name__, e))
        return None


def _write(stream, text):
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _append(path, text):
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        pass


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--watchdog":
    sys.exit(watchdog_main(sys.argv[2:]))
