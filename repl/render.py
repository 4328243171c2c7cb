"""Text rendering of snapshots, in py-spy's dump shape."""
from __future__ import annotations

import io
import os

from snapshot.model import Snapshot, ThreadStack

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional, TextIO


def thread_header(thread: ThreadStack) -> str:
    state = "idle" if thread.is_idle else "active"
    if thread.holds_gil:
        state += "+gil"
    ident = str(thread.native_id) if thread.native_id else "%#X" % thread.thread_id
    header = 'Thread %s (%s): "%s"' % (ident, state, thread.name or "")
    notes = thread_notes(thread)
    return header + " [%s]" % "; ".join(notes) if notes else header


#: Status words the (idle|active)(+gil) header already says.
_PLAIN_STATUSES = ("holds_gil", "running", "idle", None)


def thread_notes(thread: ThreadStack) -> List[str]:
    """What py-spy's header does not say: the status (native frames, GIL wait), GC running, the exception."""
    notes = []
    status = getattr(thread, "status", None)
    if status == "waiting_for_gil":
        notes.append("waiting for the GIL")
    elif status not in _PLAIN_STATUSES:
        notes.append(status)
    if getattr(thread, "gc_collecting", False):
        notes.append("gc collecting")
    exception = getattr(thread, "exception", None)
    if exception is not None:
        notes.append("handling %s" % exception_text(exception))
    return notes


def exception_text(exception) -> str:
    text = exception.message.replace("\n", "\\n")
    return "%s: %s" % (exception.type, text) if text else exception.type


def native_note(thread: ThreadStack) -> Optional[str]:
    """The line saying why a native-mode thread shows its Python frames only, if it does."""
    error = getattr(thread, "native_error", None)
    return "    (native frames not shown: %s)" % error if error else None


def process_header(snapshot: Snapshot) -> List[str]:
    command = " ".join(snapshot.command_line) or snapshot.executable
    return ["Process %d: %s" % (snapshot.pid, command),
            "Python v%s (%s)" % (snapshot.python_version, snapshot.executable), ""]


def frame_line(frame, full_filenames: bool = False) -> str:
    if frame.is_native:
        # py-spy's --native shape: the symbol and the library it is in
        library = frame.module if full_filenames else os.path.basename(frame.module or "")
        return "%s (%s)" % (frame.function, library or "[anonymous]")
    filename = frame.filename if full_filenames else frame.short_filename
    return "%s (%s:%d)" % (frame.function, filename, frame.line)


def render_thread(thread: ThreadStack, out: TextIO, show_locals: bool, full_filenames: bool = False,
                  marker: Optional[int] = None) -> None:
    out.write(thread_header(thread) + "\n")
    note = native_note(thread)
    if note:
        out.write(note + "\n")
    for index, frame in enumerate(thread.frames):
        prefix = "  > " if marker == index else "    "
        out.write(prefix + frame_line(frame, full_filenames) + "\n")
        if show_locals and frame.locals:
            arguments = [l for l in frame.locals if l.is_argument]
            others = [l for l in frame.locals if not l.is_argument]
            for title, group in (("Arguments", arguments), ("Locals", others)):
                if group:
                    out.write("        %s:\n" % title)
                    for local in group:
                        out.write("            %s: %s\n" % (local.name, local.repr))


def render_snapshot(snapshot: Snapshot, out: TextIO, show_locals: bool = False,
                    full_filenames: bool = False) -> None:
    """The whole dump, written to ``out`` at once.  Why at once: an unbuffered stdout
    (``PYTHONUNBUFFERED``, ``python -u``, common in containers) made every line a system
    call, hundreds per dump."""
    text = io.StringIO()
    for line in process_header(snapshot):
        text.write(line + "\n")
    interpreters = sorted({thread.interpreter_id for thread in snapshot.threads})
    if len(interpreters) <= 1:
        for thread in snapshot.threads:
            render_thread(thread, text, show_locals, full_filenames)
    else:
        # Several interpreters: threads grouped by interpreter, main (0) first, as pystack does.
        for interp_id in interpreters:
            text.write("Interpreter %d%s:\n" % (interp_id, " (main)" if interp_id == 0 else ""))
            for thread in snapshot.threads:
                if thread.interpreter_id == interp_id:
                    render_thread(thread, text, show_locals, full_filenames)
            text.write("\n")
    out.write(text.getvalue())
