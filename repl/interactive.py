"""The REPL: ``pyspy-repl --pid N`` (prompt) and its scripted mode (``-c CMD`` or stdin).

    pyspy-repl --pid PID                     prompt on a live process
    pyspy-repl -- COMMAND ARGS...            start COMMAND and inspect it
    pyspy-repl --pid PID -c 'dump --locals' -c 'sample --duration 2'
    pyspy-repl --pid PID < runbook.txt       commands from stdin ('#' starts a comment)

Scripted mode (``-c`` given, or stdin not a terminal) prints no prompt and no
escape codes and exits non-zero if any command failed.  Ctrl-C cancels the
running command, never the session; every failure is one line and the
session goes on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from snapshot.errors import SnapshotError

from . import interrupts
from .commands import CommandError, QuitRequested
from .commands.dump import add_core_options, add_load_option, open_core_if_asked
from .dispatch import REPL, Dispatcher, split_line
from .session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional


# --------------------------------------------------------------------------- options
def build_parser(prog: str) -> argparse.ArgumentParser:
    from .helptext import subcommand_lines
    parser = argparse.ArgumentParser(
        prog=prog, description="Interactive, read-only inspector for a live Python process or a core file.",
        usage="%(prog)s [--pid PID | --core CORE | --load FILE | -- COMMAND ARGS...] [-c CMD]... [--no-color]\n"
              "       %(prog)s SUBCOMMAND [options]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=subcommand_lines(prog) + "\nCommands at the prompt: `help`.")
    parser.add_argument("--version", "-V", action="version", version="%s %s" % (prog, _version()))
    parser.add_argument("--pid", "-p", type=int, help="process to inspect")
    parser.add_argument("-c", dest="commands", action="append", default=[], metavar="CMD",
                        help="run CMD and exit (repeatable; the exit status is non-zero if any failed)")
    parser.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR=1, non-terminals)")
    add_core_options(parser)
    add_load_option(parser)
    return parser


def _version() -> str:
    from .helptext import version
    return version()


def _history_path() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "pyspy-repl", "history")


def _wants_color(no_color: bool) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def start_child(command: List[str], session: Session, dispatcher: Dispatcher,
                timeout: float = 20.0) -> Optional[int]:
    """Start ``command`` and wait until its Python interpreter can be read; returns its pid."""
    from .supervise import Child
    try:
        child = Child(command)
    except OSError as e:
        dispatcher.print_error(session, CommandError("cannot start %s: %s" % (command[0], e.strerror or e)))
        return None
    session.child = child
    session.pid = child.pid
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if not child.alive():
            dispatcher.print_error(session, CommandError("%s exited with status %s before it could be inspected"
                                                         % (command[0], child.returncode)))
            return None
        try:
            session.take_snapshot(locals=True)
            return child.pid
        except SnapshotError as e:
            last = e
            session.target = None
            time.sleep(0.1)
    dispatcher.print_error(session, last or CommandError("timed out waiting for the interpreter"))
    return child.pid


def stop_child(session: Session) -> None:
    """End the command this session started, if it still runs."""
    child = session.child
    if child is None or not child.alive():
        return
    child.stop(timeout=3)
    session.note("stopped %s (pid %d) that this session started" % (child.describe(), child.pid))


def banner(session: Session) -> str:
    snap = session.snapshot
    if snap is None:
        return "pyspy-repl: not attached (attach PID); `help` lists the commands"
    command = " ".join(snap.command_line) or snap.executable
    saved = getattr(session, "saved", None)
    if saved is not None:
        from snapshot.savefile import describe
        return ("%s: %s\n%s\nPython %s, %d threads; read-only: `help` lists what works on a file"
                % (getattr(session, "snapshot_path", "?"), describe(saved), command[:100], snap.python_version,
                   len(snap.threads)))
    return ("attached to pid %d: %s\nPython %s, %d threads; `help` lists the commands, `threads` and `bt` start here"
            % (snap.pid, command[:100], snap.python_version, len(snap.threads)))


# --------------------------------------------------------------------------- main
def main(argv: Optional[List[str]] = None, prog: str = "pyspy-repl") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    child_command: List[str] = []
    if "--" in argv:
        index = argv.index("--")
        argv, child_command = argv[:index], argv[index + 1:]
    parser = build_parser(prog)
    try:
        options = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if sum([options.pid is not None, bool(child_command), bool(options.core), bool(options.load)]) > 1:
        parser.print_usage(sys.stderr)
        sys.stderr.write("%s: error: give one of --pid, --core, --load or -- COMMAND\n" % prog)
        return 2
    scripted = bool(options.commands) or not sys.stdin.isatty()
    session = Session(options.pid)
    session.interactive = not scripted
    session.color = not scripted and _wants_color(options.no_color)
    session.live = session.interactive and sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
    dispatcher = Dispatcher(REPL, prog)
    session.dispatcher = dispatcher

    try:
        # -- the target --
        if child_command:
            if start_child(child_command, session, dispatcher) is None:
                return 1
        elif options.core or options.load:
            try:
                open_core_if_asked(session, options)
                session.take_snapshot(locals=True)
            except (SnapshotError, CommandError) as e:
                dispatcher.print_error(session, e)
                return getattr(e, "exit_code", 1) or 1
        elif options.pid is not None:
            try:
                session.take_snapshot(locals=True)
            except (SnapshotError, CommandError) as e:
                dispatcher.print_error(session, e)
                if scripted:
                    return getattr(e, "exit_code", 1) or 1
                session.pid = None
        if scripted:
            lines = options.commands if options.commands else sys.stdin
            return run_script(session, dispatcher, lines)
        return run_prompt(session, dispatcher)
    finally:
        session.stop_jobs()
        stop_child(session)
        session.close()


def run_script(session: Session, dispatcher: Dispatcher, lines) -> int:
    failed = 0
    for line in lines:
        try:
            words = split_line(line)
        except CommandError as e:
            dispatcher.print_error(session, e)
            failed += 1
            continue
        if not words:
            continue
        try:
            status = dispatcher.run_words(session, words)
        except QuitRequested:
            break
        failed += status != 0
        message = session.check_alive()
        if message:
            session.note(message)
    return 1 if failed else 0


def run_prompt(session: Session, dispatcher: Dispatcher) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.output import ColorDepth

    from .completion import ReplCompleter

    try:
        path = _history_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        history = FileHistory(path)
    except OSError:
        history = InMemoryHistory()
    prompt = PromptSession(history=history, completer=ReplCompleter(session, dispatcher),
                           complete_while_typing=False,
                           color_depth=None if session.color else ColorDepth.DEPTH_1_BIT)
    session.out.write(banner(session) + "\n")
    session.out.flush()
    while True:
        try:
            return _prompt_loop(session, dispatcher, prompt, FormattedText)
        except KeyboardInterrupt:
            interrupts.acted()  # landed between two steps of the loop: the session goes on


def _prompt_loop(session: Session, dispatcher: Dispatcher, prompt, FormattedText) -> int:
    """Read and run lines until quit or EOF.

    Why every step is guarded: Ctrl-C is a signal, and it can land anywhere,
    after a command's own handler has run (while the prompt is set up, the
    target's liveness checked, the prompt text built).  Such a late Ctrl-C
    never ends the REPL, and it is spent: it must not cancel the next command
    the user types (``interrupts.check()`` would act on the remembered one)."""
    while True:
        try:
            message = session.check_alive()
            if message:
                session.note(message)
            text = session.prompt_text()
            shown = FormattedText([("ansicyan bold", text)]) if session.color else text
            line = prompt.prompt(shown)
        except KeyboardInterrupt:
            interrupts.acted()
            continue            # Ctrl-C at the prompt clears the line
        except EOFError:
            session.out.write("\n")
            return 0
        interrupts.acted()      # a Ctrl-C before Enter belonged to the previous command
        try:
            dispatcher.run_line(session, line)
        except QuitRequested:
            return 0
        except KeyboardInterrupt:
            interrupts.acted()  # after the command's own handler: nothing left to cancel


if __name__ == "__main__":
    sys.exit(main())
