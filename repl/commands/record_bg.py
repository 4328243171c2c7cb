"""``record start|status|stop``: a recording in a background thread while the prompt stays usable.

The recorder runs the one sampling loop (``snapshot.sampler.Sampler``) in
its own thread with its own ``Target``: ptrace requires that all calls of one
pause come from one OS thread, and ``Target.sample()`` does a whole pause per
call on the calling thread.  Foreground commands and the recorder share
``session.pause_lock`` (the sampler holds it around every read) so two
pauses never overlap.
"""
from __future__ import annotations

import os
import threading
import time

from snapshot import attach
from snapshot.errors import SnapshotError
from snapshot.profile import Profile, ProfileOptions
from snapshot.writers import format_for_path, formats, needs_timeline, write_atomic, writer_class

from .base import Command, CommandError, finite, register

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional


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
        self.profile = Profile(ProfileOptions(threads=threads, idle=idle, rate_hz=rate, timeline=needs_timeline(fmt)))
        self.lock = threading.Lock()       # guards profile while the thread adds to it
        self.sampler = None                # the Sampler, once the thread has attached
        self._stopping = False
        self.ended: Optional[str] = None   # why the loop ended
        self.error: Optional[str] = None
        self.started = time.monotonic()
        self.stopped_at: Optional[float] = None
        self.written = False
        self.thread = threading.Thread(target=self._run, name="pyspy-record", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _add(self, sample) -> None:
        with self.lock:
            self.profile.add(sample)

    def _run(self) -> None:
        from snapshot.sampler import Sampler, SamplerOptions
        try:
            target = attach(self.pid)
        except SnapshotError as e:
            self.error = str(e)
            self.ended = "failed"
            return
        try:
            self.sampler = Sampler(target, self._add,
                                   SamplerOptions(rate=self.rate, duration=self.duration, idle=self.idle),
                                   lock=self.session.pause_lock)
            if self._stopping:
                self.sampler.stop("interrupted")
            self.ended = self.sampler.run()
        except Exception as e:  # noqa: BLE001 - reported by `record status`
            self.error = "%s: %s" % (type(e).__name__, e)
            self.ended = "failed"
        finally:
            self.stopped_at = time.monotonic()
            target.close()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _counts(self):
        stats = self.sampler.stats if self.sampler is not None else None
        return (stats.passes, stats.samples, stats.errors) if stats is not None else (0, 0, 0)

    def status(self) -> str:
        elapsed = (self.stopped_at or time.monotonic()) - self.started
        state = "recording" if self.running else "stopped (%s)" % {
            "exited": "target exited", "duration": "duration reached", "interrupted": "stopped",
            "failed": "failed: %s" % self.error}.get(self.ended or "", self.ended or "?")
        passes, samples, errors = self._counts()
        return "%s pid %d -> %s [%s] %.1fs, %d passes, %d samples, %d failed passes" % (
            state, self.pid, self.path, self.format, elapsed, passes, samples, errors)

    def stop(self) -> str:
        """Stop sampling and write the file; returns a one-line summary."""
        self._stopping = True
        if self.sampler is not None:
            self.sampler.stop("interrupted")
        self.thread.join(10)
        if self.written:
            return "already written: %s" % self.path
        if self.error and not self.profile.samples:
            raise CommandError("recording failed: %s" % self.error)
        passes, _, errors = self._counts()
        with self.lock:
            self.profile.errors = errors
            writer = writer_class(self.format)(self.profile)
            try:
                write_atomic(self.path, writer)
                failed = None
            except OSError as e:
                # the path went bad while recording: keep the recording anyway
                from snapshot.writers.destination import fallback_path
                failed, self.path = e.strerror or str(e), fallback_path(
                    self.path, writer.extension, self.pid, time.strftime("%Y%m%d-%H%M%S"))
                write_atomic(self.path, writer)
        self.written = True
        done = "wrote %s (%s): %d samples in %d passes over %.1fs" % (
            self.path, self.format, self.profile.samples, passes,
            (self.stopped_at or time.monotonic()) - self.started)
        return done if failed is None else "could not write the output (%s); %s instead" % (failed, done)


@register
class RecordReplCommand(Command):
    name = "record"
    help = ("Record in the background while the prompt stays usable:\n"
            "  record start -o FILE [-f FORMAT] [--rate HZ]   start sampling\n"
            "  record status                                  samples so far\n"
            "  record stop                                    stop and write FILE")
    #: the prompt's ``record``; ``pyspy-repl record`` is RecordCommand (record.py)
    cli = False
    samples = True

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=("start", "status", "stop"))
        parser.add_argument("--output", "-o", metavar="FILE", help="file to write (start)")
        parser.add_argument("--format", "-f", metavar="FORMAT",
                            help="output format: %s (default: from FILE's extension, else flamegraph)"
                            % ", ".join(formats()))
        parser.add_argument("--rate", "-r", type=finite, default=100.0, metavar="HZ",
                            help="samples per second (default 100)")
        parser.add_argument("--duration", "-d", type=finite, default=None, metavar="S",
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
        from snapshot.writers.destination import check_destination
        check_destination(path)   # a bad path is known before sampling, not at `record stop`
        session.get_target()   # fail now (not in the thread) if the target is unusable
        recorder = Recorder(session, session.pid, path, fmt, args.rate, args.idle, args.threads, args.duration)
        recorder.start()
        session.jobs[JOB] = recorder
        session.out.write("recording pid %d at %g Hz to %s (%s); `record stop` writes it\n"
                          % (session.pid, args.rate, path, fmt))
        return 0
