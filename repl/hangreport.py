"""The text form of a hang report (``snapshot.hang.HangReport``), for a CI log.

One block per process of the tree (its threads in py-spy's dump shape, with
``watch --native`` their C frames as ``function (library)`` lines, a
``**`` line naming what a stuck or waiting thread does, ``>`` on the frame
it waits in), then a summary of every flagged thread.  The JSON form is the
engine's ``HangReport.to_dict()``.
"""
from __future__ import annotations

import io

from .render import frame_line, native_note

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import TextIO


RULE = "=" * 78


def describe_wait(waiting) -> str:
    """``waiting in Event.wait at main (app.py:12) (blocked in wait (threading.py:355))``."""
    where = waiting.caller or waiting.frame
    text = "waiting in %s" % waiting.api
    if where is not None:
        text += " at %s" % frame_line(where)
    if waiting.frame is not None and where is not waiting.frame:
        text += " (blocked in %s)" % frame_line(waiting.frame)
    return text


def verdict_label(verdict, window: float) -> str:
    """What a thread did over the window, e.g. ``STUCK: did not move ...; waiting in ...``."""
    parts = []
    if verdict.stuck:
        parts.append("STUCK: did not move in %d samples over %.1f s" % (verdict.samples, window))
    elif verdict.samples >= 2:
        parts.append("running: stack changed between samples")
    if verdict.waiting is not None:
        parts.append(describe_wait(verdict.waiting))
    elif verdict.kernel is not None and verdict.kernel.syscall and verdict.kernel.state in ("S", "D"):
        parts.append("kernel: blocked in %s" % verdict.kernel.syscall)
    return "; ".join(parts)


def headline(report) -> str:
    what = {"timeout": "TIMEOUT", "stall": "STALL", "pytest": "TEST TIMEOUT"}.get(report.reason,
                                                                                report.reason.upper())
    text = "pyspy-repl: %s" % what
    if report.reason == "stall" and report.limit is not None:
        text += ": no Python stack in the process tree changed for %.1f s" % report.limit
    elif report.limit is not None:
        text += " after %.1f s" % report.limit
    if report.title:
        text += " -- %s" % report.title
    return text


def _thread_ident(thread, bare: bool = False) -> str:
    ident = str(thread.native_id) if thread.native_id else "%#x" % thread.thread_id
    return ident if bare else "thread %s %r" % (ident, thread.name or "")


def render(report, out: TextIO, show_locals: bool = False) -> None:
    pythons = report.python_processes()
    out.write(RULE + "\n" + headline(report) + "\n")
    if report.command:
        out.write("command: %s\n" % " ".join(report.command))
    out.write("process tree of pid %d: %d process(es), %d Python; %d samples over %.1f s per process%s\n"
              % (report.root_pid, len(report.processes), len(pythons), report.samples, report.window,
                 "; native (C) frames merged" if getattr(report, "native", False) else ""))
    out.write(RULE + "\n")
    for proc in report.processes:
        out.write("\n")
        _render_process(report, proc, out, show_locals)
    out.write("\n" + RULE + "\nSummary (stuck = stack identical in all %d samples):\n" % report.samples)
    flagged = report.flagged()
    if not flagged:
        out.write("  no stuck or waiting thread found\n")
    for proc, verdict in flagged:
        thread = verdict.thread
        top = verdict.waiting.caller or verdict.waiting.frame if verdict.waiting else (
            thread.frames[0] if thread.frames else None)
        out.write("  pid %d %s %-8s %s\n" % (
            proc.info.pid, _thread_ident(thread), "STUCK" if verdict.stuck else "moving",
            (describe_wait(verdict.waiting) if verdict.waiting else
             ("in %s" % frame_line(top) if top else "no Python frames"))))
        if verdict.waiting is not None and verdict.waiting.source:
            out.write("      > %s\n" % verdict.waiting.source)
    out.write(RULE + "\n")


def _render_process(report, proc, out: TextIO, show_locals: bool) -> None:
    info = proc.info
    elapsed = "?" if info.elapsed is None else "%.1f s" % info.elapsed
    out.write("Process %d (parent %s, running %s): %s\n" % (
        info.pid, info.ppid if info.ppid is not None else "?", elapsed,
        " ".join(info.command_line) or info.name))
    if not proc.python:
        out.write("    not a Python process (not dumped)%s\n" % (
            "" if not proc.error or "not a Python" in proc.error else ": " + proc.error))
        return
    if proc.snapshot is None:
        out.write("    could not read it: %s\n" % proc.error)
        return
    snap = proc.snapshot
    out.write("Python v%s (%s)\n" % (snap.python_version, snap.executable))
    if proc.error:
        out.write("    note: %s\n" % proc.error)
    for verdict in proc.threads:
        thread = verdict.thread
        state = "idle" if thread.is_idle else "active"
        if thread.holds_gil:
            state += "+gil"
        out.write("\nThread %s (%s): \"%s\"\n" % (_thread_ident(thread, bare=True), state, thread.name or ""))
        label = verdict_label(verdict, report.window)
        if label:
            out.write("  ** %s\n" % label)
        note = native_note(thread)
        if note:
            out.write(note + "\n")
        waiting_at = verdict.waiting.frame if verdict.waiting else None
        for frame in thread.frames:
            mark = "  > " if frame is waiting_at or (waiting_at is not None and frame == waiting_at) else "    "
            out.write("%s%s\n" % (mark, frame_line(frame)))
            if show_locals and frame.locals:
                for local in frame.locals:
                    out.write("        %s%s = %s\n" % ("(arg) " if local.is_argument else "", local.name,
                                                        local.repr))
        if not thread.frames:
            out.write("    (no Python frames)\n")


def text(report, show_locals: bool = False) -> str:
    buf = io.StringIO()
    render(report, buf, show_locals)
    return buf.getvalue()


__all__ = ["describe_wait", "headline", "render", "text", "verdict_label"]
