"""``save``: write a snapshot file (``pyspy-snapshot save --pid N -o FILE``), to study offline.

The file holds every thread's stack with locals and the memory behind them
(a bounded exploration of each frame's locals and globals), so
``pyspy-repl --load FILE`` can later ``print payload['items'][3].name`` on
another machine, without the process or its binaries.  Works on a live
process and on a core (``--core``).
"""
from __future__ import annotations

import os

from .base import CORE, Command, CommandError, register
from .dump import add_core_options, open_core_if_asked


@register
class SaveCommand(Command):
    name = "save"
    help = "Save a snapshot file (stacks, locals and the memory behind them) to open later with --load."
    cli = True
    one_shot = True
    on_core = True
    needs = "a process or a core to read"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pid", "-p", type=int, help="process to save (CLI; the REPL uses its target)")
        parser.add_argument("-o", "--output", required=True, metavar="FILE",
                            help="snapshot file to write (replaced atomically)")
        parser.add_argument("--no-locals", action="store_true",
                            help="stacks only: no locals, no memory beyond the walk (smaller)")
        parser.add_argument("--max-repr", type=int, default=1024, metavar="N",
                            help="cut each local's repr after N characters (default 1024, as dump)")
        parser.add_argument("--depth", type=int, default=4, metavar="N",
                            help="levels below each local and global to save for `print` (default 4)")
        parser.add_argument("--max-mib", type=float, default=48, metavar="MIB",
                            help="memory saved beyond the walk, at most (default 48 MiB)")
        parser.add_argument("--max-seconds", type=float, default=5.0, metavar="S",
                            help="explore values for S seconds at most: the target stays paused meanwhile "
                                 "(default 5)")
        parser.add_argument("--compression", choices=("zlib", "lzma"), default="zlib",
                            help="zlib (default, fast) or lzma (smaller, slower)")
        add_core_options(parser)

    def run(self, session, args) -> int:
        from snapshot import savefile

        if args.depth < 0 or not args.max_mib >= 0 or not args.max_seconds >= 0 or args.max_repr < 4 \
                or args.max_mib == float("inf") or args.max_seconds == float("inf"):
            raise CommandError("--depth, --max-mib and --max-seconds must be finite and >= 0, --max-repr >= 4")
        output = args.output
        directory = os.path.dirname(os.path.abspath(output))
        if os.path.isdir(output):
            raise CommandError("%s is a directory: give a file name (e.g. %s)"
                               % (output, os.path.join(output, "snapshot" + savefile.EXTENSION)))
        if not os.path.isdir(directory):
            raise CommandError("cannot write %s: directory %s does not exist" % (output, directory))
        if not os.access(directory, os.W_OK):
            raise CommandError("cannot write %s: directory %s is not writable" % (output, directory))
        if args.core and args.pid is not None:
            raise CommandError("give --pid or --core, not both")
        open_core_if_asked(session, args)
        target = session.get_target(args.pid)
        limits = savefile.ExploreLimits(depth=args.depth, globals_depth=args.depth,
                                        max_bytes=int(args.max_mib * (1 << 20)), max_seconds=args.max_seconds)
        with session.pause_lock:
            saved = savefile.capture(target.process, locals=not args.no_locals, max_repr=args.max_repr,
                                     limits=limits, source="core" if session.source == CORE else "live")
        size = saved.write(output, args.compression)
        stopped_by = saved.info["explore"].get("stopped_by") if saved.has_locals else ""
        if stopped_by:
            session.note("note: values explored up to the %s limit (%s); deeper values are not in the file"
                         % (stopped_by.replace("_", "-"), {"max_objects": "%d values" % saved.info["explore"]["objects"],
                                                           "max_bytes": "--max-mib %g" % args.max_mib,
                                                           "max_seconds": "--max-seconds %g" % args.max_seconds
                                                           }.get(stopped_by, stopped_by)))
        snap = saved.snapshot
        frames = sum(len(t.frames) for t in snap.threads)
        session.out.write("saved pid %d to %s: %d threads, %d frames%s, %s in %.2f s\n" % (
            snap.pid, output, len(snap.threads), frames,
            ", %d values" % saved.info["explore"].get("objects", 0) if saved.has_locals else ", no locals",
            _size(size), saved.info["capture_seconds"]))
        return 0


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else "%.1f %s" % (n, unit)
        n /= 1024.0
    return str(n)
