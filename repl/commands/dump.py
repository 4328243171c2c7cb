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


def add_load_option(parser) -> None:
    """The flag that opens a saved snapshot file (``pyspy-snapshot save``)."""
    parser.add_argument("--load", metavar="FILE", help="read a snapshot file written by `pyspy-snapshot save`")


def open_core_if_asked(session, args) -> None:
    if getattr(args, "load", None):
        if getattr(args, "core", None) or getattr(args, "pid", None) is not None:
            from .base import CommandError
            raise CommandError("give one of --pid, --core or --load")
        session.open_snapshot_file(args.load)
        return
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
        parser.add_argument("--async", dest="async_tasks", action="store_true",
                            help="also every asyncio task: an await tree (JSON: {threads, tasks})")
        add_read_options(parser)
        add_core_options(parser)
        add_load_option(parser)

    def run(self, session, args) -> int:
        open_core_if_asked(session, args)
        kwargs = {"tasks": True} if args.async_tasks else {}
        snapshot = session.take_snapshot(locals=args.locals, blocking=not args.nonblocking,
                                         max_repr=args.max_repr, pid=args.pid, **kwargs)
        if args.json:
            from ..streams import encodes_unicode
            data = snapshot.threads_json()
            if args.async_tasks:
                data = {"threads": data, "tasks": [task.to_dict() for task in snapshot.tasks]}
            text = json.dumps(data, indent=2, ensure_ascii=not encodes_unicode(session.out))
            session.out.write(text + "\n")
        else:
            render_snapshot(snapshot, session.out, show_locals=args.locals, full_filenames=args.full_filenames)
            if args.async_tasks:
                from ..tasktree import render_tasks
                session.out.write("\n")
                render_tasks(snapshot, session.out, show_locals=args.locals, full_filenames=args.full_filenames)
        return 0
