"""REPL ``tasks`` and ``task ID``: asyncio tasks, and selecting one so bt/locals/print use its coroutine frames."""
from __future__ import annotations

from .base import Command, CommandError, register


@register
class TasksCommand(Command):
    name = "tasks"
    on_core = in_debugger = on_snapshot_file = True
    help = "List every asyncio task: id, state, thread, name, where it is suspended; * marks the selected one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first")
        parser.add_argument("--tree", action="store_true", help="the await tree (like dump --async)")

    def run(self, session, args) -> int:
        snap = session.snapshot
        if args.fresh or snap is None or (not snap.tasks and not session.with_tasks and not session.exited
                                          and session.source == "live"):
            snap = session.take_snapshot(locals=True, tasks=True)
        out = session.out
        if args.tree:
            from ..tasktree import render_tasks
            render_tasks(snap, out)
            return 0
        if not snap.tasks:
            out.write("No asyncio tasks.\n")
            return 0
        from ..tasktree import task_summary_line
        out.write("  %-4s %-16s %-10s %-16s %-24s %s\n" % ("#", "TASK ID", "STATE", "THREAD", "NAME", "WHERE"))
        for index, task in enumerate(snap.tasks):
            line = task_summary_line(index, task, session.task_id)
            out.write((session.style(line, "bold") if task.task_id == session.task_id else line) + "\n")
        return 0


@register
class TaskCommand(Command):
    name = "task"
    on_core = in_debugger = on_snapshot_file = True
    help = ("Select an asyncio task by id (0x hex or decimal), position (#N) or name; bt, frame, locals\n"
            "and print then work on its coroutine frames.  `thread ID` goes back to threads.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("id", nargs="*", metavar="ID|NAME", help="task to select")

    def run(self, session, args) -> int:
        snap = session.snapshot
        if snap is None or not snap.tasks:
            snap = session.take_snapshot(locals=True, tasks=True)
        if not args.id:
            task = snap.task(session.task_id) if session.task_id is not None else None
            if task is None:
                raise CommandError("no task selected (see `tasks`)")
        else:
            task = snap.task(" ".join(args.id))
            if task is None:
                raise CommandError("no task %r (see `tasks`)" % " ".join(args.id))
        session.select_task(task)
        from ..render import frame_line
        where = (" at " + frame_line(task.frames[0])) if task.frames else " (no coroutine frames)"
        awaits = ", ".join(snap.task(a).name for a in task.awaits if snap.task(a)) or "-"
        by = ", ".join(snap.task(a).name for a in task.awaited_by if snap.task(a)) or "-"
        session.out.write("[task %#x %s, %s]%s\n  awaits: %s; awaited by: %s%s\n" % (
            task.task_id, task.name, task.state, where, awaits, by, " (inferred)" if task.inferred else ""))
        return 0
