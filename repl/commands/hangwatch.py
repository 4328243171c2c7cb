"""CLI ``pyspy-repl watch --timeout S -- COMMAND ...``: run a command, report its stacks if it hangs.

Not the REPL's ``watch`` (repeat a command on fresh snapshots, watch_cmd.py):
this class is CLI-only (``repl = False``).

COMMAND runs with stdin/stdout/stderr passed through (inherited file
descriptors, nothing is copied), in watch's process group, so a terminal's
Ctrl-C reaches it directly; SIGTERM and SIGHUP sent to watch are forwarded
to it.  When it ends in time, watch exits with its status unchanged (128+N
when it died of signal N, like a shell).  When it exceeds ``--timeout``, or
with ``--stall S`` when no Python stack in its process tree changed for S
seconds (nonblocking samples about every 0.5 s), watch captures every
process of the tree from outside (snapshot.hang), writes the text report
(repl/hangreport.py) to stderr (and ``--report FILE``) and the JSON report
to ``--json FILE`` (``--native``: each thread's C frames merged in; every
sample then pauses the process, as native unwinding needs; the ``--stall``
polls stay non-blocking and Python-only), then sends SIGTERM to the whole tree, SIGKILL after
``--kill-after`` seconds to what is left (repl/supervise.py), and exits with 124.

Exit statuses (as timeout(1)): COMMAND's own status when it finishes in time;
124 timed out or stalled (report written); 125 watch itself failed;
126 COMMAND could not be executed; 127 COMMAND not found.
"""
from __future__ import annotations

import argparse
import errno
import json
import subprocess
import time

from ..supervise import Child, exit_status, forward_signals, terminate_tree
from .base import Command, CommandError, finite, register, remainder_command

EXIT_TIMEOUT = 124
EXIT_WATCH_FAILED = 125
EXIT_CANNOT_RUN = 126
EXIT_NOT_FOUND = 127
#: Seconds between two stall samples of the tree.
STALL_INTERVAL = 0.5


def _positive(text: str) -> float:
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive: %r" % text)
    return value


def _not_negative(text: str) -> float:
    value = finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative: %r" % text)
    return value


@register
class HangWatchCommand(Command):
    name = "watch"
    help = ("Run COMMAND; if it runs longer than --timeout (or stalls), print the Python stacks of\n"
            "every process in its tree, flag stuck and waiting threads, then end it (exit 124).\n\n"
            "  pyspy-repl watch --timeout 600 --stall 120 --report hang.txt -- pytest -x tests/\n\n"
            "Exit status: COMMAND's own when it finishes in time; 124 timed out or stalled;\n"
            "125 watch failed; 126 COMMAND cannot run; 127 COMMAND not found.")
    cli = True
    repl = False
    needs_target = False
    needs_live = True

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", "-t", type=_positive, required=True, metavar="SECONDS",
                            help="report and end COMMAND after this many seconds")
        parser.add_argument("--stall", type=_positive, default=None, metavar="SECONDS",
                            help="report earlier if no Python stack in the tree changed for this long")
        parser.add_argument("--kill-after", "-k", type=_not_negative, default=5.0, metavar="SECONDS",
                            help="after SIGTERM, wait this long before SIGKILL (default 5)")
        parser.add_argument("--report", metavar="FILE", help="also write the text report to FILE")
        parser.add_argument("--json", metavar="FILE", help="write the JSON report to FILE")
        parser.add_argument("--locals", "-l", action="store_true", help="include local variables")
        parser.add_argument("--samples", type=int, default=5, metavar="N",
                            help="samples per process to tell stuck threads (default 5)")
        parser.add_argument("--window", type=_not_negative, default=1.0, metavar="SECONDS",
                            help="over how long the samples are spread (default 1)")
        from .dump import add_native_options
        add_native_options(parser, short=False)
        parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS...",
                            help="the command to run")

    def run(self, session, args) -> int:
        command = remainder_command(args.command)
        if not command:
            raise CommandError("watch: no command given (pyspy-repl watch --timeout S -- COMMAND ARGS...)")
        from .sampling import native_options
        native_options(args)   # --debug-dir; --native with a non-blocking read is a usage error
        return Watcher(args, command, session.err).run()


class Watcher:
    def __init__(self, args, command, err):
        self.args = args
        self.command = command
        self.err = err
        self.child = None

    def run(self) -> int:
        try:
            self.child = Child(self.command)
        except FileNotFoundError as e:
            self.err.write("pyspy-repl watch: %s: %s\n" % (self.command[0], e.strerror))
            return EXIT_NOT_FOUND
        except OSError as e:
            self.err.write("pyspy-repl watch: cannot run %s: %s\n" % (self.command[0], e.strerror))
            return EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_RUN
        with forward_signals(self.child):
            try:
                return self._supervise()
            except Exception as e:  # noqa: BLE001 - watch itself failed: say so, never leave COMMAND unwatched
                self.err.write("pyspy-repl watch: failed: %s: %s; ending COMMAND\n" % (type(e).__name__, e))
                self.err.flush()
                terminate_tree(self.child.pid, kill_after=self.args.kill_after)
                return EXIT_WATCH_FAILED

    # -- the loop ------------------------------------------------------------
    def _supervise(self) -> int:
        args = self.args
        start = time.monotonic()
        deadline = start + args.timeout
        monitor = None
        if args.stall is not None:
            from snapshot.stall import StallMonitor
            monitor = StallMonitor(self.child.pid)
        reason = None
        try:
            while True:
                now = time.monotonic()
                wait = deadline - now
                if monitor is not None:
                    wait = min(wait, STALL_INTERVAL)
                try:
                    status = self.child.wait(timeout=max(0.0, wait))
                    return exit_status(status)
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() >= deadline:
                    reason = "timeout"
                    break
                if monitor is not None and monitor.poll() >= args.stall:
                    reason = "stall"
                    break
            return self._fire(reason, time.monotonic() - start, monitor)
        finally:
            if monitor is not None:
                monitor.close()

    def _fire(self, reason, elapsed, monitor) -> int:
        from snapshot.hang import capture_tree, process_tree
        args = self.args
        limit = args.timeout if reason == "timeout" else args.stall
        seen = dict(monitor.seen) if monitor is not None else {}
        try:
            report = capture_tree(self.child.pid, samples=args.samples, window=args.window, locals=args.locals,
                                  reason=reason, command=self.command, elapsed=elapsed, limit=limit,
                                  targets=monitor.targets if monitor is not None else None,
                                  native=bool(args.native or args.native_all), native_all=bool(args.native_all))
        except Exception as e:  # noqa: BLE001 - whatever happens, the tree must still end
            report = None
            self.err.write("pyspy-repl watch: capture failed: %s: %s\n" % (type(e).__name__, e))
        if report is not None:
            self._write_report(report)
        if monitor is not None:
            monitor.close()   # detach before ending the tree
        try:
            for proc in process_tree(self.child.pid):
                seen.setdefault(proc.pid, None)
        except Exception:  # noqa: BLE001
            pass
        result = terminate_tree(self.child.pid, kill_after=args.kill_after, also=seen)
        try:
            self.child.wait(timeout=5)
        except (subprocess.TimeoutExpired, ChildProcessError):
            pass
        line = "pyspy-repl watch: %s after %.1f s; %s; exit status %d\n" % (
            "timed out" if reason == "timeout" else "stalled", elapsed, result.describe(), EXIT_TIMEOUT)
        self.err.write(line)
        self.err.flush()
        if args.report:
            try:
                with open(args.report, "a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError:
                pass
        return EXIT_TIMEOUT

    def _write_report(self, report) -> None:
        args = self.args
        from ..hangreport import text as report_text
        text = report_text(report, show_locals=args.locals)
        try:
            self.err.write(text)
            self.err.flush()
        except (OSError, ValueError):
            pass
        if args.report:
            try:
                with open(args.report, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as e:
                self.err.write("pyspy-repl watch: cannot write %s: %s\n" % (args.report, e.strerror))
        if args.json:
            try:
                with open(args.json, "w", encoding="utf-8") as fh:
                    json.dump(report.to_dict(), fh, indent=2, ensure_ascii=False)
                    fh.write("\n")
            except OSError as e:
                self.err.write("pyspy-repl watch: cannot write %s: %s\n" % (args.json, e.strerror))


__all__ = ["HangWatchCommand", "EXIT_TIMEOUT"]
