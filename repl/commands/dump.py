"""``dump``: every thread's stack (and locals), as text or py-spy-compatible JSON."""
from __future__ import annotations

import json
import os

from ..render import render_snapshot
from .base import Command, register


def add_read_options(parser) -> None:
    """Flags every command that takes a snapshot understands."""
    parser.add_argument("--nonblocking", action="store_true",
                        help="read without pausing the target (faster for it, may be inconsistent)")


def add_core_options(parser) -> None:
    """Flags that open a core file instead of a live process."""
    parser.add_argument("--core", metavar="CORE", help="read a core file (kernel or gcore; gzip/zstd/xz too)")
    parser.add_argument("--executable", metavar="PATH", help="the core's program, if not at its recorded path")
    parser.add_argument("--lib-search-path", metavar="DIRS", action="append", default=[],
                        help="directories (%s-separated, repeatable) holding the core's binaries" % os.pathsep)


def open_core_if_asked(session, args) -> None:
    if getattr(args, "core", None):
        dirs = [d for value in args.lib_search_path for d in value.split(os.pathsep) if d]
        session.open_core(args.core, dirs, args.executable)


@register
class DumpCommand(Command):
    name = "dump"
    help = "Print the Python stack of every thread (like py-spy dump)."
    cli = True
    on_core = in_debugger = on_snapshot_file = True

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pid", "-p", type=int, help="process to inspect (CLI; the REPL uses its target)")
        parser.add_argument("--locals", "-l", action="store_true", help="show arguments and local variables")
        parser.add_argument("--json", "-j", action="store_true", help="print JSON (py-spy's field names)")
        parser.add_argument("--max-repr", type=int, default=1024, metavar="N",
                            help="cut each value's repr after N characters (default 1024)")
        parser.add_argument("--full-filenames", action="store_true", help="show full paths of source files")
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first (REPL)")
        add_read_options(parser)
        add_core_options(parser)

    def run(self, session, args) -> int:
        open_core_if_asked(session, args)
        snapshot = session.take_snapshot(locals=args.locals, blocking=not args.nonblocking,
                                         max_repr=args.max_repr, pid=args.pid)
        if args.json:
            session.out.write(json.dumps(snapshot.threads_json(), indent=2, ensure_ascii=False) + "\n")
        else:
            render_snapshot(snapshot, session.out, show_locals=args.locals, full_filenames=args.full_filenames)
        return 0
