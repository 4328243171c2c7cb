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

import time

from ..progress import Progress, behind_warning, format_seconds
from ..streams import EXIT_OUTPUT
from .base import Command, CommandError, finite, register
from .sampling import (StopOnSignal, add_sampling_arguments, add_target_arguments, native_options,
                       open_target, stop_reason_text)

def default_output(fmt: str, pid: int) -> str:
    from snapshot.writers import writer_class
    return "pyspy-repl-%d-%s%s" % (pid, time.strftime("%Y%m%d-%H%M%S"), writer_class(fmt).extension)


@register
class RecordCommand(Command):
    name = "record"
    help = "Sample a Python program and write a profile (flame graph, speedscope, raw, chrometrace, pprof)."
    cli = True
    repl = False          # the prompt's `record` is record_bg.RecordReplCommand
    samples = True

    def add_arguments(self, parser) -> None:
        from snapshot.writers import formats
        add_target_arguments(parser)
        parser.add_argument("--output", "-o", metavar="FILE",
                            help="output file (default: pyspy-repl-PID-DATE.EXT)")
        parser.add_argument("--format", "-f", choices=formats(), metavar="FORMAT",
                            help="output format: %s (default: from the file name, else flamegraph)"
                                 % ", ".join(formats()))
        parser.add_argument("--duration", "-d", type=finite, metavar="SECONDS",
                            help="stop after SECONDS (default: until Ctrl-C or the program exits)")
        add_sampling_arguments(parser)
        parser.add_argument("--threads", "-t", action="store_true", help="a root frame per thread")
        parser.add_argument("--function", "-F", action="store_true",
                            help="aggregate by function, showing its first line")
        parser.add_argument("--nolineno", action="store_true", help="no line numbers: aggregate by function")
        parser.add_argument("--full-filenames", action="store_true", help="full paths of source files")
        parser.add_argument("--async", dest="async_aware", action="store_true",
                            help="asyncio: a <task NAME> frame between the event loop and the running "
                                 "task's coroutines, so time is shown by task")
        parser.add_argument("--flush-interval", type=finite, metavar="SECONDS",
                            help="rewrite the output file every SECONDS while recording")

    def run(self, session, args) -> int:
        from snapshot.profile import Profile, ProfileOptions
        from snapshot.sampler import Sampler, SamplerOptions
        from snapshot.writers import format_for_path, needs_timeline, writer_for
        from snapshot.writers.destination import check_destination, write_output

        if args.rate <= 0:
            raise CommandError("--rate must be positive")
        if args.duration is not None and args.duration <= 0:
            raise CommandError("--duration must be positive")
        if args.flush_interval is not None and args.flush_interval <= 0:
            raise CommandError("--flush-interval must be positive")
        fmt = args.format or (format_for_path(args.output, "flamegraph") if args.output else "flamegraph")
        err = session.err
        stdout = _binary_stdout(session.out)
        stdout_fd = _fileno(stdout)
        if args.output:
            # before attaching or launching anything: a bad path must not cost the recording
            check_destination(args.output, stdout_fd)

        native = native_options(args)
        target, launched = open_target(session, args, tree=args.subprocesses)
        if native["native"] and target is not None:
            target.check_native()
        # --subprocesses with a root that runs no Python: sample its Python descendants only
        root_pid = target.pid if target is not None else (launched.pid if launched else args.pid)
        output = args.output or default_output(fmt, root_pid)
        if target is not None:
            target.async_aware = args.async_aware
        if not args.output:
            check_destination(output, stdout_fd)
        profile = Profile(ProfileOptions(threads=args.threads, subprocesses=args.subprocesses,
                                         nolineno=args.nolineno, function=args.function,
                                         full_filenames=args.full_filenames, gil=args.gil, idle=args.idle,
                                         rate_hz=args.rate, timeline=needs_timeline(fmt)))
        # The writer (its module and whatever that imports) is loaded at the first flush or the
        # end, so sampling starts without paying for it.
        writer = None
        if target is not None:
            _add_mappings(profile, target)
        progress = Progress(err)
        flush = {"next": time.monotonic() + args.flush_interval if args.flush_interval else None,
                 "count": 0, "error": None}
        warned = []

        failures = {"last": None}

        def save(stats) -> None:
            nonlocal writer
            if writer is None:
                writer = writer_for(fmt, profile)
            profile.errors = stats.errors
            profile.late = stats.late
            profile.missed = stats.missed
            write_output(output, writer, stdout)

        def on_error(pid, error) -> None:
            failures["last"] = error

        def on_pass(sampler) -> None:
            if not warned and sampler.stats.passes % 16 == 0 and sampler.stats.behind(args.rate):
                warned.append(True)
                progress.note(behind_warning(sampler.stats, args.rate))
            progress.update(sampler.stats)
            if flush["next"] is not None and time.monotonic() >= flush["next"]:
                try:
                    save(sampler.stats)
                    flush["count"] += 1
                except OSError as e:
                    flush["error"] = e
                flush["next"] = time.monotonic() + args.flush_interval

        sampler = Sampler([target] if target is not None else [], profile.add,
                          SamplerOptions(rate=args.rate, duration=args.duration, blocking=not args.nonblocking,
                                         gil=args.gil, idle=args.idle, subprocesses=args.subprocesses,
                                         **native),
                          on_pass=on_pass, on_error=on_error, alive=launched.alive if launched else None,
                          on_tick=profile.tick, root_pid=root_pid,
                          attach=_async_attach if args.async_aware else None)
        if progress.enabled:
            if target is not None:
                err.write("Sampling process %d at %g Hz (Python %s); Ctrl-C to stop and write %s\n"
                          % (target.pid, args.rate, target.python_version, output))
            else:
                err.write("Sampling the Python processes under %d at %g Hz; Ctrl-C to stop and write %s\n"
                          % (root_pid, args.rate, output))
            err.flush()
        saved = {"where": output, "error": None}
        try:
            with StopOnSignal(sampler):
                reason = sampler.run()
        finally:
            sampler.close()
            try:
                if not _interrupted_empty(sampler):
                    saved["where"], saved["error"] = _save_somewhere(save, sampler.stats, output, lambda: writer,
                                                                     root_pid)
            finally:
                if launched is not None:
                    _stop_launched(launched, sampler.stats.pids if args.subprocesses else ())
                    if target is not None:
                        target.close()
        stats = sampler.stats
        if _interrupted_empty(sampler):
            # Ctrl-C before the first pass: nothing to write (and an existing file is left alone)
            progress.finish("interrupted before the first sampling pass: nothing was collected, %s not written"
                            % output)
            return 130
        why = stop_reason_text(reason)
        shown = "standard output" if saved["where"] == "-" else saved["where"]
        message = ("Wrote %s profile to %s: %d samples, %d errors, %d late, %d missed, %s (%s)"
                   % (fmt, shown, stats.samples, stats.errors, stats.late, stats.missed,
                      format_seconds(stats.elapsed), why))
        if len(stats.pids) > 1:
            message += ", %d processes" % len(stats.pids)
        if flush["error"] is not None:
            message += "; a periodic flush failed: %s" % flush["error"]
        if saved["error"] is not None:
            # one line: what failed and where the recording is instead
            progress.finish("%s: error: could not write %s (%s); saved the %s profile to %s instead (%d samples)"
                            % (session.dispatcher.prog if session.dispatcher else "pyspy-repl", output,
                               saved["error"], fmt, saved["where"], stats.samples))
            return EXIT_OUTPUT
        if stats.behind(args.rate):
            if not warned:
                progress.note(behind_warning(stats, args.rate))
            message += "; behind: %.0f of %g samples a second" % (stats.achieved_rate(), args.rate)
        progress.finish(message)
        if mostly_failed(stats):
            last = failures["last"]
            session.err.write("%s: error: %d of %d sampling passes failed%s\n"
                              % (session.dispatcher.prog if session.dispatcher else "pyspy-repl",
                                 stats.errors, stats.passes, ": %s" % last if last is not None else ""))
            session.err.write("  hint: the profile holds only the passes that worked; "
                              "check that the target is a healthy CPython process and record again\n")
            return EXIT_MOSTLY_FAILED
        return 0


def _interrupted_empty(sampler) -> bool:
    """Ctrl-C ended sampling before its first pass (an idle target's passes hold no samples,
    and are still a recording)."""
    return sampler.stop_reason == "interrupted" and sampler.stats.passes == 0


#: Exit statuses (README): the output could not be written (a fallback file was); most passes failed.
EXIT_MOSTLY_FAILED = 7


def _add_mappings(profile, target) -> None:
    """The root process's binaries, for formats that describe them (pprof); best effort."""
    from snapshot.errors import SnapshotError
    process = getattr(target, "process", None)
    if process is None:
        return
    try:
        profile.add_mappings(target.pid, target.executable, process.mapped_files())
    except (SnapshotError, OSError, ValueError):
        pass


def mostly_failed(stats) -> bool:
    """More failed passes than good ones (and enough passes to tell)."""
    return stats.errors >= 3 and stats.errors * 2 > stats.passes


def _async_attach(pid: int):
    """Attach a followed subprocess with ``--async`` on, like the root (its tasks under its threads)."""
    from snapshot.target import attach
    target = attach(pid)
    target.async_aware = True
    return target


def _binary_stdout(out):
    """The byte stream behind the session's stdout (None if there is none)."""
    stream = getattr(out, "buffer", None)
    return stream if stream is not None and hasattr(stream, "write") else None


def _fileno(stream):
    try:
        return stream.fileno() if stream is not None else None
    except (OSError, ValueError, AttributeError):
        return None


def _save_somewhere(save, stats, output, get_writer, pid):
    """(where the profile went, None) or, when ``output`` refused it, (fallback path, the reason).
    ``get_writer``: the writer, made by ``save`` (writers are imported only when first needed)."""
    from snapshot.writers.destination import OutputPathError, fallback_path, write_output
    try:
        save(stats)
        return output, None
    except OSError as e:
        reason = e.strerror or str(e)
    except OutputPathError as e:
        reason = str(e)
    writer = get_writer()
    path = fallback_path(output, writer.extension, pid, time.strftime("%Y%m%d-%H%M%S"))
    try:
        write_output(path, writer)
    except OSError as e:
        raise CommandError("could not write %s (%s) nor the fallback %s (%s): the recording is lost"
                           % (output, reason, path, e.strerror or e)) from None
    return path, reason


def _stop_launched(launched, pids) -> None:
    """Stop the command we started, and with ``--subprocesses`` every process of its tree."""
    import psutil
    tree = {}
    try:
        for child in psutil.Process(launched.pid).children(recursive=True):
            tree[child.pid] = child
    except psutil.Error:
        pass
    for pid in pids:
        if pid != launched.pid and pid not in tree:
            try:
                tree[pid] = psutil.Process(pid)
            except psutil.Error:
                pass
    launched.stop()
    if not pids:
        return
    for proc in tree.values():
        try:
            proc.terminate()
        except psutil.Error:
            pass
    gone, alive = psutil.wait_procs(list(tree.values()), timeout=2.0)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=2.0)


__all__ = ["RecordCommand"]
