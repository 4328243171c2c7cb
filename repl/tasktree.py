"""Text rendering of asyncio tasks: an await tree like ``python -m asyncio pstree``.

Roots are tasks nobody awaits; under each task its coroutine chain (outermost
first, as pstree prints it), then the tasks it awaits.  An await graph with a
cycle cannot be a tree: the cycles are reported, then every task is listed flat.
"""
from __future__ import annotations


from snapshot.model import AsyncTask, Snapshot

from .render import frame_line

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, TextIO


def find_cycles(tasks: List[AsyncTask]) -> List[List[int]]:
    """Cycles of the awaits graph, each as task ids (first repeated at the end)."""
    by_id = {t.task_id: t for t in tasks}
    colour: Dict[int, int] = {}
    cycles: List[List[int]] = []
    for start in by_id:
        if colour.get(start):
            continue
        stack = [(start, iter(by_id[start].awaits))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                colour[node] = 2
                continue
            if child not in by_id:
                continue
            if colour.get(child) == 1:
                cycles.append(path[path.index(child):] + [child])
            elif not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(by_id[child].awaits)))
    return cycles


def _task_title(task: AsyncTask) -> str:
    extra = [task.state]
    if task.thread_id:
        extra.append("thread %#x" % task.thread_id)
    if task.waiting_on and not task.awaits:
        extra.append("awaiting %s" % task.waiting_on)
    return "(T) %s [%s] id=%#x" % (task.name, ", ".join(extra), task.task_id)


def render_tasks(snapshot: Snapshot, out: TextIO, show_locals: bool = False, full_filenames: bool = False) -> None:
    tasks = list(snapshot.tasks)
    if not tasks:
        out.write("No asyncio tasks.\n")
        return
    inferred = any(t.inferred for t in tasks)
    out.write("asyncio tasks: %d%s\n" % (len(tasks), " (awaited-by inferred from _fut_waiter, gather children "
                                          "and TaskGroup membership)" if inferred else ""))
    cycles = find_cycles(tasks)
    by_id = {t.task_id: t for t in tasks}
    if cycles:
        out.write("ERROR: await-graph contains cycles - cannot print a tree!\n")
        for cycle in cycles:
            out.write("cycle: %s\n" % " \u2192 ".join(by_id[i].name for i in cycle))
        out.write("\n")
        for task in tasks:
            out.write(_task_title(task) + "\n")
            _frames(task, out, "    ", show_locals, full_filenames)
        return
    roots = [t for t in tasks if not any(a in by_id for a in t.awaited_by)]
    for index, root in enumerate(roots):
        _node(root, by_id, out, "", index == len(roots) - 1, show_locals, full_filenames, set())


def _frames(task: AsyncTask, out: TextIO, prefix: str, show_locals: bool, full_filenames: bool) -> str:
    """The coroutine chain outermost first, each nested one step; returns the prefix under the last."""
    for frame in reversed(task.frames):
        out.write("%s\u2514\u2500\u2500  %s\n" % (prefix, frame_line(frame, full_filenames)))
        prefix += "    "
        if show_locals and frame.locals:
            for local in frame.locals:
                out.write("%s  %s = %s\n" % (prefix, local.name, local.repr))
    return prefix


def _node(task: AsyncTask, by_id, out: TextIO, prefix: str, last: bool, show_locals: bool,
          full_filenames: bool, seen: set) -> None:
    out.write("%s%s %s\n" % (prefix, "\u2514\u2500\u2500" if last else "\u251c\u2500\u2500", _task_title(task)))
    inner = prefix + ("    " if last else "\u2502   ")
    if task.task_id in seen:
        return
    seen = seen | {task.task_id}
    under = _frames(task, out, inner, show_locals, full_filenames)
    children = [by_id[a] for a in task.awaits if a in by_id]
    for index, child in enumerate(children):
        _node(child, by_id, out, under, index == len(children) - 1, show_locals, full_filenames, seen)


def task_summary_line(index: int, task: AsyncTask, selected: Optional[int] = None) -> str:
    mark = "*" if task.task_id == selected else " "
    where = frame_line(task.frames[0]) if task.frames else "-"
    return "%s %-4d %-16s %-10s %-16s %-24s %s" % (
        mark, index, "%#x" % task.task_id, task.state, "%#x" % task.thread_id if task.thread_id else "-",
        task.name, where)
