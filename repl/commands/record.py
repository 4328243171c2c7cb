"""``record``: sample a process into a profile file (flags as in ``py-spy record``).

    pyspy-repl record -o profile.svg --pid 1234
    pyspy-repl record -o out.speedscope.json -r 250 -d 30 -- python app.py --flag

The format follows ``-f`` or the output file's extension.  Ctrl-C, the
duration running out, or the target exiting all end the recording and write
the file (atomically: a reader never sees half of it); ``--flush-interval``
rewrites it periodically meanwhile.  A launched command is recorded until it
exits; if the recording ends first (``--duration``), the command is stopped.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import threading
import time
from typing import List, Optional

from snapshot.errors import ProcessExitedError

from ..progress import Progress, format_seconds, is_terminal
from .base import Command, CommandError, register, remainder_command

#: Seconds a launched command gets to show an initialised interpreter.
LAUNCH_TIMEOUT = 10.0


def add_target_arguments(parser) -> None:
    parser.add_argument("--pid", "-p", type=int, help="PID of a running Python program to sample")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                        help="a Python program to run and sample until it exits")


def add_sampling_arguments(parser) -> None:
    parser.add_argument("--rate", "-r", type=float, default=100, metavar="RATE",
                        help="samples per second (default 100)")
    parser.add_argument("--nonblocking", action="store_true",
                        help="don't pause the target while reading it (less overhead, may be inconsistent)")
    parser.add_argument("--gil", "-g", action="store_true",
                        help="only sample the thread holding the GIL")
    parser.add_argument("--idle", "-i", action="store_true", help="include idle threads")
    parser.add_argument("--subprocesses", "-s", action="store_true",
                        help="also sample child processes (multiprocessing, gunicorn workers...)")


def command_of(args) -> List[str]:
    return remainder_command(args.command)


class Launched:
    """A command we started: reaped on poll, stopped if still running when we are done."""

    def __init__(self, command: List[str]):
        try:
            # Popen returns once exec has succeeded (it waits on a close-on-exec pipe),
            # so the pid already runs the new program.
            self.proc = subprocess.Popen(command)
        except OSError as e:
            raise CommandError("cannot run %s: %s" % (command[0], e.strerror or e)) from None
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 2.0) -> Optional[int]:
        if self.alive():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    self.proc.send_signal(sig)
                except OSError:
                    break
                try:
                    self.proc.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return self.proc.poll()


def open_target(session, args):
    """(target, launched-or-None) for ``--pid N`` or ``-- COMMAND ...``."""
    from snapshot.sampler import attach_when_ready

    command = command_of(args)
    if command and args.pid is not None:
        raise CommandError("give either --pid or a command, not both")
    if not command:
        if args.pid is None and getattr(session, "pid", None) is None:
            raise CommandError("no target: give --pid PID or -- COMMAND ARGS...")
        return session.get_target(args.pid), None
    launched = Launched(command)
    try:
        target = attach_when_ready(launched.pid, LAUNCH_TIMEOUT, alive=launched.alive)
    except ProcessExitedError:
        code = launched.proc.wait()
        raise CommandError("%s exited (status %s) before it could be sampled" % (command[0], code)) from None
    except BaseException:
        launched.stop()
        raise
    return target, launched


class StopOnSignal:
    """First Ctrl-C (or SIGTERM) ends sampling cleanly; a second one interrupts for real."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.sampler.stopping:
            raise KeyboardInterrupt
        self.sampler.stop("interrupted")

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def default_output(fmt: str, pid: int) -> str:
    from snapshot.writers import writer_class
    return "pyspy-repl-%d-%s%s" % (pid, time.strftime("%Y%m%d-%H%M%S"), writer_class(fmt).extension)


@register
class RecordCommand(Command):
    name = "record"
    help = "Sample a Python program and write a profile (flame graph, speedscope, raw, chrometrace, pprof)."
    cli = True

    def add_arguments(self, parser) -> None:
        from snapshot.writers import formats
        add_target_arguments(parser)
        parser.add_argument("--output", "-o", metavar="FILE",
                            help="output file (default: pyspy-repl-PID-DATE.EXT)")
        parser.add_argument("--format", "-f", choices=formats(), metavar="FORMAT",
                            help="output format: %s (default: from the file name, else flamegraph)"
                                 % ", ".join(formats()))
        parser.add_argument("--duration", "-d", type=float, metavar="SECONDS",
                            help="stop after SECONDS (default: until Ctrl-C or the program exits)")
        add_sampling_arguments(parser)
        parser.add_argument("--threads", "-t", action="store_true", help="a root frame per thread")
        parser.add_argument("--function", "-F", action="store_true",
                            help="aggregate by function, showing its first line")
        parser.add_argument("--nolineno", action="store_true", help="no line numbers: aggregate by function")
        parser.add_argument("--full-filenames", action="store_true", help="full paths of source files")
        parser.add_argument("--flush-interval", type=float, metavar="SECONDS",
                            help="rewrite the output file every SECONDS while recording")

    def run(self, session, args) -> int:
        from snapshot.profile import Profile, ProfileOptions
        from snapshot.sampler import Sampler, SamplerOptions
        from snapshot.writers import format_for_path, write_atomic, writer_for

        if args.rate <= 0:
            raise CommandError("--rate must be positive")
        if args.duration is not None and args.duration <= 0:
            raise CommandError("--duration must be positive")
        if args.flush_interval is not None and args.flush_interval <= 0:
            raise CommandError("--flush-interval must be positive")
        fmt = args.format or (format_for_path(args.output, "flamegraph") if args.output else "flamegraph")
        err = session.err

        target, launched = open_target(session, args)
        output = args.output or default_output(fmt, target.pid)
        profile = Profile(ProfileOptions(threads=args.threads, subprocesses=args.subprocesses,
                                         nolineno=args.nolineno, function=args.function,
                                         full_filenames=args.full_filenames, gil=args.gil, idle=args.idle,
                                         rate_hz=args.rate))
        writer = writer_for(fmt, profile)
        progress = Progress(err)
        flush = {"next": time.monotonic() + args.flush_interval if args.flush_interval else None,
                 "count": 0, "error": None}

        def save(stats) -> None:
            profile.errors = stats.errors
            profile.late = stats.late
            write_atomic(output, writer)

        def on_pass(sampler) -> None:
            progress.update(sampler.stats)
            if flush["next"] is not None and time.monotonic() >= flush["next"]:
                try:
                    save(sampler.stats)
                    flush["count"] += 1
                except OSError as e:
                    flush["error"] = e
                flush["next"] = time.monotonic() + args.flush_interval

        sampler = Sampler(target, profile.add,
                          SamplerOptions(rate=args.rate, duration=args.duration, blocking=not args.nonblocking,
                                         gil=args.gil, idle=args.idle, subprocesses=args.subprocesses),
                          on_pass=on_pass, alive=launched.alive if launched else None)
        if progress.enabled:
            err.write("Sampling process %d at %g Hz (Python %s); Ctrl-C to stop and write %s\n"
                      % (target.pid, args.rate, target.python_version, output))
            err.flush()
        try:
            with StopOnSignal(sampler):
                reason = sampler.run()
        finally:
            sampler.close()
            try:
                save(sampler.stats)
            finally:
                if launched is not None:
                    launched.stop()
                    target.close()
        stats = sampler.stats
        why = {"duration": "duration reached", "exited": "target exited",
               "interrupted": "interrupted"}.get(reason, reason)
        message = ("Wrote %s profile to %s: %d samples, %d errors, %d late, %s (%s)"
                   % (fmt, output, stats.samples, stats.errors, stats.late, format_seconds(stats.elapsed), why))
        if len(stats.pids) > 1:
            message += ", %d processes" % len(stats.pids)
        if flush["error"] is not None:
            message += "; a periodic flush failed: %s" % flush["error"]
        progress.finish(message)
        return 0


__all__ = ["RecordCommand", "open_target", "add_target_arguments", "add_sampling_arguments", "is_terminal"]
