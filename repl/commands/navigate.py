"""REPL navigation: threads, thread, bt/where, frame, up, down, locals, refresh, attach, detach, help, quit."""
from __future__ import annotations

from ..render import frame_line
from .base import Command, CommandError, QuitRequested, register


@register
class ThreadsCommand(Command):
    name = "threads"
    on_core = in_debugger = on_snapshot_file = True
    help = "List the target's threads: id, OS id, name, active/idle, GIL; * marks the selected one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first")

    def run(self, session, args) -> int:
        snap = session.refresh() if args.fresh else session.ensure_snapshot()
        out = session.out
        from ..render import thread_notes
        out.write("  %-3s %-16s %-9s %-8s %-4s %-6s %s\n" % ("#", "THREAD ID", "OS ID", "STATE", "GIL", "FRAMES", "NAME"))
        for index, thread in enumerate(snap.threads):
            mark = "*" if thread.thread_id == session.thread_id else " "
            state = "idle" if thread.is_idle else "active"
            if getattr(thread, "status", None) == "waiting_for_gil":
                gil = "wait"
            else:
                gil = "yes" if thread.holds_gil else ""
            line = "%s %-3d %-16s %-9s %-8s %-4s %-6d %s" % (
                mark, index, "%#x" % thread.thread_id, thread.native_id or "-", state,
                gil, len(thread.frames), thread.name or "")
            notes = thread_notes(thread)
            if notes:
                line += "  [%s]" % "; ".join(notes)
            if mark == "*":
                line = session.style(line, "bold")
            out.write(line + "\n")
        return 0


@register
class ThreadCommand(Command):
    name = "thread"
    aliases = ("t",)
    on_core = in_debugger = on_snapshot_file = True
    help = ("Select a thread by thread id (decimal or 0x hex), OS thread id, position (#N) or name;\n"
            "without an argument, show the selected one.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("id", nargs="*", metavar="ID|NAME", help="thread to select (names may contain spaces)")

    def run(self, session, args) -> int:
        from ..session import thread_label
        if args.id:
            thread = session.select_thread(" ".join(args.id))
        else:
            session.ensure_snapshot()
            thread = session.current_thread()
        frame = session.current_frame(required=False)
        where = (" at " + frame_line(frame)) if frame is not None else " (no Python frames)"
        session.out.write("[thread %#x (%s) %s]%s\n" % (thread.thread_id, thread.native_id or "-",
                                                        thread_label(thread), where))
        return 0


@register
class BacktraceCommand(Command):
    name = "bt"
    aliases = ("where", "backtrace")
    on_core = in_debugger = on_snapshot_file = True
    help = "Show the selected thread's stack, innermost first; > marks the selected frame."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first")
        parser.add_argument("--full-filenames", action="store_true", help="show full paths of source files")
        parser.add_argument("--all", "-a", action="store_true", help="every thread, not only the selected one")
        from .dump import add_native_options
        add_native_options(parser)

    def run(self, session, args) -> int:
        from ..render import native_note, thread_header
        from .base import SNAPSHOT_FILE
        from .dump import use_debug_dirs
        use_debug_dirs(args)
        if (args.native or args.native_all) and session.source != SNAPSHOT_FILE:
            # a new snapshot with C frames (and locals, so frame/locals keep working on it)
            session.take_snapshot(locals=True, native=True, native_all=args.native_all)
        else:
            session.ensure_snapshot(locals=False, fresh=args.fresh)
        selected = session.current_thread()
        threads = session.snapshot.threads if args.all else (selected,)
        for thread in threads:
            session.out.write(thread_header(thread) + "\n")
            note = native_note(thread)
            if note:
                session.out.write(note + "\n")
            if not thread.frames:
                session.out.write("    (no Python frames)\n")
            for index, frame in enumerate(thread.frames):
                current = thread is selected and index == session.frame_index
                line = "%s#%-3d %s" % ("> " if current else "  ", index, frame_line(frame, args.full_filenames))
                session.out.write((session.style(line, "bold") if current else line) + "\n")
        return 0


class _FrameMove(Command):
    on_core = in_debugger = on_snapshot_file = True
    def show(self, session) -> int:
        frame = session.current_frame()
        session.out.write("#%d %s\n" % (session.frame_index, frame_line(frame, True)))
        source = _source_line(frame)
        if source:
            session.out.write("    %d  %s\n" % (frame.line, source))
        return 0


def _source_line(frame):
    """The frame's source line when the file is readable here (same machine or container)."""
    if not frame.filename or frame.filename.startswith("<") or frame.line <= 0:
        return None
    try:
        import linecache
        text = linecache.getline(frame.filename, frame.line)
    except Exception:  # noqa: BLE001
        return None
    return text.strip() or None


@register
class FrameCommand(_FrameMove):
    name = "frame"
    aliases = ("f",)
    help = "Select frame N of the selected thread (0 = innermost); without N, show the selected frame."

    def add_arguments(self, parser) -> None:
        parser.add_argument("n", nargs="?", type=int, metavar="N", help="frame number (see `bt`)")

    def run(self, session, args) -> int:
        session.ensure_snapshot(locals=False)
        if args.n is not None:
            session.select_frame(args.n)
        return self.show(session)


@register
class UpCommand(_FrameMove):
    name = "up"
    help = "Move N frames up, towards the callers (outer frames; default 1)."
    step = 1

    def add_arguments(self, parser) -> None:
        parser.add_argument("n", nargs="?", type=int, default=1, metavar="N", help="frames to move (default 1)")

    def run(self, session, args) -> int:
        session.ensure_snapshot(locals=False)
        thread = session.current_thread()
        if not thread.frames:
            raise CommandError("thread has no Python frames")
        target = session.frame_index + self.step * args.n
        clamped = min(max(target, 0), len(thread.frames) - 1)
        if clamped == session.frame_index and args.n:
            raise CommandError("already at the %s frame" % ("outermost" if self.step > 0 else "innermost"))
        session.select_frame(clamped)
        return self.show(session)


@register
class DownCommand(UpCommand):
    name = "down"
    help = "Move N frames down, towards the innermost frame (default 1)."
    step = -1


@register
class LocalsCommand(Command):
    name = "locals"
    on_core = in_debugger = on_snapshot_file = True
    help = "Show the arguments and local variables of the selected frame."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first")

    def run(self, session, args) -> int:
        session.ensure_snapshot(locals=True, fresh=args.fresh)
        frame = session.current_frame()
        out = session.out
        if frame.locals is None:
            raise CommandError("this snapshot has no locals (run `refresh`)")
        if not frame.locals:
            out.write("(no locals)\n")
            return 0
        arguments = [l for l in frame.locals if l.is_argument]
        others = [l for l in frame.locals if not l.is_argument]
        for title, group in (("Arguments", arguments), ("Locals", others)):
            if group:
                out.write(session.style(title + ":", "bold") + "\n")
                for local in group:
                    out.write("    %s = %s\n" % (session.style(local.name, "cyan"), local.repr))
        return 0


@register
class RefreshCommand(Command):
    name = "refresh"
    aliases = ("r",)
    on_core = in_debugger = True   # after a debugger step, the stacks differ
    help = "Take a new snapshot (with locals); the selected thread stays selected if it still exists."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--nonblocking", action="store_true", help="read without pausing the target")

    def run(self, session, args) -> int:
        snap = session.take_snapshot(locals=True, blocking=not args.nonblocking)
        session.out.write("snapshot of pid %d: %d threads, Python %s\n" % (
            snap.pid, len(snap.threads), snap.python_version))
        return 0


@register
class AttachCommand(Command):
    name = "attach"
    help = "Attach to another process (detaches from the current one)."
    on_core = on_snapshot_file = True   # switches the session to a running process
    needs_target = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("pid", type=int, help="process id")

    def run(self, session, args) -> int:
        # The new process is attached and read before the current one is let go: a pid that
        # cannot be attached leaves the session (target, snapshot, selection, jobs) as it was.
        from snapshot import attach
        from .base import LIVE
        target = attach(args.pid)  # its error (with its hint) is the command's; nothing changed
        try:
            with session.pause_lock:
                snap = target.snapshot(locals=True)
        except BaseException:
            target.close()
            raise
        session.stop_jobs()
        session.detach()
        session.pid = args.pid
        session.source = LIVE
        session.target = target
        session._set_snapshot(snap)
        session.out.write("attached to pid %d: Python %s, %d threads\n" % (
            snap.pid, snap.python_version, len(snap.threads)))
        return 0


@register
class DetachCommand(Command):
    name = "detach"
    help = "Detach from the target (it keeps running; nothing was ever changed in it)."
    on_core = on_snapshot_file = True   # switches the session to a running process
    needs_target = False

    def run(self, session, args) -> int:
        if session.pid is None:
            raise CommandError("not attached")
        pid = session.pid
        session.stop_jobs()
        session.detach()
        session.pid = None
        session.out.write("detached from pid %d\n" % pid)
        return 0


@register
class HelpCommand(Command):
    name = "help"
    aliases = ("h", "?")
    help = "List the commands, or show one command's help."
    on_core = in_debugger = on_snapshot_file = True
    needs_target = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("command", nargs="?", help="command to describe")

    def run(self, session, args) -> int:
        dispatcher = getattr(session, "dispatcher", None)
        if dispatcher is None:
            raise CommandError("help needs a front end that dispatches commands")
        if args.command:
            cls = dispatcher.command_class(args.command)
            if cls is None:
                raise CommandError("unknown command %r (try `help`)" % args.command)
            session.out.write(cls().parser(cls.name).format_help())
            return 0
        out = session.out
        out.write("Commands (help COMMAND for details; any command takes --help):\n")
        for name in dispatcher.names(session):
            cls = dispatcher.command_class(name)
            aliases = ", ".join(a for a in cls.aliases if a != "?")
            title = name + (" (%s)" % aliases if aliases else "")
            out.write("  %-22s %s\n" % (title, cls.help.split("\n")[0]))
        out.write("\nprint/p paths: local.attr[0]['key']; also globals of the frame's module and builtins.\n"
                  "Frames: 0 is the innermost; `up` goes to callers.  Ctrl-C cancels a command; Ctrl-D or `quit` exits.\n")
        return 0


@register
class QuitCommand(Command):
    name = "quit"
    aliases = ("exit", "q")
    help = "Leave the session (a running recording is stopped and written first)."
    on_core = on_snapshot_file = True   # a debugger has its own quit
    needs_target = False

    def run(self, session, args) -> int:
        raise QuitRequested()
