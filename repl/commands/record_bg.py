"""``record start|status|stop``: a recording in a background thread while the prompt stays usable.

The recorder opens its own ``Target`` in its thread: ptrace requires that all
calls of one pause come from one OS thread, and ``Target.sample()`` does a
whole pause per call on the calling thread.  Foreground commands and the
recorder share ``session.pause_lock`` so two pauses never overlap.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Optional

from snapshot import attach
from snapshot.errors import SnapshotError
from snapshot.profile import Profile, ProfileOptions, samples_from_snapshot
from snapshot.writers import format_for_path, formats, write_atomic, writer_class

from .base import Command, CommandError
from .sample import sample_loop

JOB = "record"


class Recorder:
    def __init__(self, session, pid: int, path: str, fmt: str, rate: float, idle: bool, threads: bool,
                 duration: Optional[float]):
        self.session = session
        self.pid = pid
        self.path = path
        self.format = fmt
        self.rate = rate
        self.idle = idle
        self.duration = duration
        self.profile = Profile(ProfileOptions(threads=threads, idle=idle, rate_hz=rate))
        self.lock = threading.Lock()       # guards profile while the thread adds to it
        self.stop_event = threading.Event()
        self.passes = 0
        self.errors = 0
        self.ended: Optional[str] = None   # why the loop ended
        self.error: Optional[str] = None
        self.started = time.monotonic()
        self.stopped_at: Optional[float] = None
        self.written = False
        self.thread = threading.Thread(target=self._run, name="pyspy-record", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            target = attach(self.pid)
        except SnapshotError as e:
            self.error = str(e)
            self.ended = "failed"
            return
        try:
            def take():
                with self.session.pause_lock:
                    return target.sample(blocking=True)

            def add(snapshot):
                self.passes += 1
                with self.lock:
                    for sample in samples_from_snapshot(snapshot):
                        if sample.is_idle and not self.idle:
                            continue
                        self.profile.add(sample)

            def failed(error):
                self.errors += 1
                with self.lock:
                    self.profile.add_error()

            self.ended = sample_loop(take, self.rate, self.stop_event, add, self.duration, on_error=failed)
        except Exception as e:  # noqa: BLE001 - reported by `record status`
            self.error = "%s: %s" % (type(e).__name__, e)
            self.ended = "failed"
        finally:
            self.stopped_at = time.monotonic()
            target.close()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def status(self) -> str:
        elapsed = (self.stopped_at or time.monotonic()) - self.started
        state = "recording" if self.running else "stopped (%s)" % {
            "exited": "target exited", "duration": "duration reached", "interrupted": "stopped",
            "failed": "failed: %s" % self.error}.get(self.ended or "", self.ended or "?")
        return "%s pid %d -> %s [%s] %.1fs, %d passes, %d samples, %d failed passes" % (
            state, self.pid, self.path, self.format, elapsed, self.passes, self.profile.samples, self.errors)

    def stop(self) -> str:
        """Stop sampling and write the file; returns a one-line summary."""
        self.stop_event.set()
        self.thread.join(10)
        if self.written:
            return "already written: %s" % self.path
        if self.error and not self.profile.samples:
            raise CommandError("recording failed: %s" % self.error)
        with self.lock:
            writer = writer_class(self.format)(self.profile)
            write_atomic(self.path, writer)
        self.written = True
        return "wrote %s (%s): %d samples in %d passes over %.1fs" % (
            self.path, self.format, self.profile.samples, self.passes,
            (self.stopped_at or time.monotonic()) - self.started)


class RecordReplCommand(Command):
    name = "record"
    help = ("Record in the background while the prompt stays usable:\n"
            "  record start -o FILE [-f FORMAT] [--rate HZ]   start sampling\n"
            "  record status                                  samples so far\n"
            "  record stop                                    stop and write FILE")
    #: REPL-only: not put in REGISTRY (the CLI's ``record`` subcommand owns that name there);
    #: the REPL's registry (repl.interactive.repl_registry) prefers cli=False classes.
    cli = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=("start", "status", "stop"))
        parser.add_argument("--output", "-o", metavar="FILE", help="file to write (start)")
        parser.add_argument("--format", "-f", metavar="FORMAT",
                            help="output format: %s (default: from FILE's extension, else flamegraph)"
                            % ", ".join(formats()))
        parser.add_argument("--rate", "-r", type=float, default=100.0, metavar="HZ",
                            help="samples per second (default 100)")
        parser.add_argument("--duration", "-d", type=float, default=None, metavar="S",
                            help="stop sampling after S seconds (the file is still written by `record stop`)")
        parser.add_argument("--idle", action="store_true", help="include idle threads")
        parser.add_argument("--threads", action="store_true", help="a root frame per thread")

    def run(self, session, args) -> int:
        job = session.jobs.get(JOB)
        if args.action == "status":
            if job is None:
                session.out.write("no recording (record start -o FILE)\n")
            else:
                session.out.write(job.status() + "\n")
            return 0
        if args.action == "stop":
            if job is None:
                raise CommandError("no recording to stop")
            try:
                message = job.stop()
            finally:
                session.jobs.pop(JOB, None)
            session.out.write(message + "\n")
            return 0
        if job is not None:
            if job.running:
                raise CommandError("a recording is already running (record status / record stop)")
            session.note("previous recording not written; writing it now")
            session.out.write(job.stop() + "\n")
            session.jobs.pop(JOB, None)
        if not args.output:
            raise CommandError("record start needs -o FILE")
        if args.rate <= 0 or args.rate > 10000:
            raise CommandError("--rate must be in (0, 10000]")
        fmt = args.format or format_for_path(args.output, "flamegraph")
        try:
            writer_class(fmt)
        except ValueError as e:
            raise CommandError(str(e)) from None
        path = os.path.abspath(os.path.expanduser(args.output))
        if not os.path.isdir(os.path.dirname(path)):
            raise CommandError("directory %s does not exist" % os.path.dirname(path))
        session.get_target()   # fail now (not in the thread) if the target is unusable
        recorder = Recorder(session, session.pid, path, fmt, args.rate, args.idle, args.threads, args.duration)
        recorder.start()
        session.jobs[JOB] = recorder
        session.out.write("recording pid %d at %g Hz to %s (%s); `record stop` writes it\n"
                          % (session.pid, args.rate, path, fmt))
        return 0
