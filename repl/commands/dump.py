"""``dump``: every thread's stack (and locals), as text or py-spy-compatible JSON."""
from __future__ import annotations

import os

from ..render import render_snapshot
from .base import Command, register


def add_read_options(parser) -> None:
    """Flags every command that takes a snapshot understands."""
    parser.add_argument("--nonblocking", action="store_true",
                        help="read without pausing the target (faster for it, may be inconsistent)")
    add_native_options(parser)


def add_native_options(parser, short: bool = True) -> None:
    """``--native`` / ``--native-all`` (C frames merged in; they need the target paused);
    ``short``: also ``-n`` as py-spy spells it (where no other flag has it)."""
    parser.add_argument("--native", *(("-n",) if short else ()), action="store_true",
                        help="also show native (C) frames, merged with the Python frames "
                             "(needs ptrace and blocking mode)")
    parser.add_argument("--native-all", action="store_true",
                        help="like --native, also the interpreter's own frames between Python frames "
                             "and threads Python never saw (started by C)")
    parser.add_argument("--debug-dir", action="append", default=[], metavar="DIR",
                        help="also look for separate debug files (DIR/.build-id/xx/....debug) here, "
                             "to name functions of stripped binaries (also PYSPY_REPL_DEBUG_DIRS; "
                             "default /usr/lib/debug)")


def use_debug_dirs(args) -> None:
    """Apply ``--debug-dir`` (symbol tables loaded from now on see those directories)."""
    dirs = getattr(args, "debug_dir", None)
    if dirs:
        from snapshot.native.symbols import add_debug_dirs
        add_debug_dirs(dirs)


def native_flags(args):
    """(native, native_all) from parsed ``add_native_options`` flags; None: the session's setting."""
    use_debug_dirs(args)
    native_all = bool(getattr(args, "native_all", False))
    native = bool(getattr(args, "native", False)) or native_all
    return (True if native else None), (True if native_all else None)


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
    one_shot = True
    on_core = in_debugger = on_snapshot_file = True

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pid", "-p", type=int, help="process to inspect (CLI; the REPL uses its target)")
        parser.add_argument("--locals", "-l", action="store_true", help="show arguments and local variables")
        parser.add_argument("--json", "-j", action="store_true", help="print JSON (py-spy's field names)")
        parser.add_argument("--max-repr", type=int, default=1024, metavar="N",
                            help="cut each value's repr after N characters (default 1024)")
        parser.add_argument("--full-filenames", action="store_true", help="show full paths of source files")
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first (REPL)")
        parser.add_argument("--subprocesses", "-s", action="store_true",
                            help="also dump the Python processes started by the target (its whole tree; "
                                 "the target itself may be a shell or supervisor)")
        parser.add_argument("--async", dest="async_tasks", action="store_true",
                            help="also every asyncio task: an await tree (JSON: {threads, tasks})")
        add_read_options(parser)
        add_core_options(parser)
        add_load_option(parser)

    def run(self, session, args) -> int:
        native, native_all = native_flags(args)
        open_core_if_asked(session, args)
        if getattr(args, "subprocesses", False):
            return dump_tree(session, args)
        kwargs = {"tasks": True} if args.async_tasks else {}
        snapshot = session.take_snapshot(locals=args.locals, blocking=not args.nonblocking,
                                         max_repr=args.max_repr, pid=args.pid, native=native,
                                         native_all=native_all, **kwargs)
        if args.json:
            import json     # here: a text dump does not pay for the module
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


def _descendants(pid: int):
    """The pids under ``pid`` (recursive), oldest first; [] when it is gone."""
    import psutil
    try:
        return [p.pid for p in sorted(psutil.Process(pid).children(recursive=True),
                                      key=lambda p: (p.create_time(), p.pid))]
    except psutil.Error:
        return []


def dump_tree(session, args) -> int:
    """``dump --subprocesses``: the target (if it runs Python) and every Python process under it."""
    from snapshot import attach
    from snapshot.errors import NotPythonError, ProcessExitedError, SnapshotError
    from .base import CommandError
    root = args.pid if args.pid is not None else session.pid
    if root is None:
        raise CommandError("no target: give --pid PID")
    blocking = not args.nonblocking
    snapshots = []
    try:
        snapshots.append(session.take_snapshot(locals=args.locals, blocking=blocking,
                                               max_repr=args.max_repr, pid=args.pid))
    except NotPythonError:
        pass  # a shell or supervisor: its children are what we came for
    problems = []
    for pid in _descendants(root):
        try:
            target = attach(pid)
        except (NotPythonError, ProcessExitedError):
            continue
        except SnapshotError as e:
            problems.append("process %d: %s" % (pid, e))
            continue
        try:
            snapshots.append(target.snapshot(locals=args.locals, blocking=blocking, max_repr=args.max_repr))
        except SnapshotError as e:
            problems.append("process %d: %s" % (pid, e))
        finally:
            target.close()
    for problem in problems:
        session.err.write("warning: %s\n" % problem)
    if not snapshots:
        raise NotPythonError("no Python process in the tree of process %d" % root,
                             "pass the pid of a CPython process or of a process that starts one")
    if args.json:
        doc = [{"pid": snap.pid, "command_line": " ".join(snap.command_line), "threads": snap.threads_json()}
               for snap in snapshots]
        import json
        session.out.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return 0
    for index, snap in enumerate(snapshots):
        if index:
            session.out.write("\n")
        render_snapshot(snap, session.out, show_locals=args.locals, full_filenames=args.full_filenames)
    return 0

