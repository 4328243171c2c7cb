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
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional, Type

from snapshot.errors import ProcessExitedError, SnapshotError

from .commands import Command, CommandError, load_all
from .commands.base import _HelpShown
from .session import Session

#: Words that stand for "leave" even when the registry is odd.
QUIT_WORDS = ("quit", "exit", "q")


# --------------------------------------------------------------------------- registry
def _subclasses(cls) -> List[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def repl_registry() -> Dict[str, Type[Command]]:
    """Name/alias -> command class for the REPL.

    Starts from ``REGISTRY`` (the shared set) and lets REPL-only classes
    (``cli = False``, e.g. the REPL's ``watch`` and ``record``) take a name
    that a CLI subcommand (``cli = True``) holds there: a CLI subcommand name
    can mean something else at the prompt.
    """
    registry: Dict[str, Type[Command]] = dict(load_all())
    for cls in _subclasses(Command):
        if cls.cli or not cls.name:
            continue
        for name in (cls.name, *cls.aliases):
            existing = registry.get(name)
            if existing is None or existing.cli:
                registry[name] = cls
    return registry


# --------------------------------------------------------------------------- dispatch
def print_error(session: Session, error: BaseException) -> None:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    session.err.write(session.style("error:", "red", "bold") + " " + text + "\n")
    hint = getattr(error, "hint", "")
    if hint:
        session.err.write("  hint: %s\n" % hint)
    session.err.flush()


def run_words(session: Session, registry: Dict[str, Type[Command]], words: List[str]) -> int:
    """Run one command line (already split); returns its status.  Only QuitRequested escapes."""
    from .commands.navigate import QuitRequested
    if not words:
        return 0
    name, argv = words[0], list(words[1:])
    cls = registry.get(name)
    if cls is None:
        print_error(session, CommandError("unknown command %r (try `help`)" % name))
        return 2
    command = cls()
    try:
        parser = command.parser(cls.name)
        if "--fresh" in argv and not any("--fresh" in a.option_strings for a in parser._actions):
            argv.remove("--fresh")
            session.refresh()
        if cls.needs_target and session.pid is None:
            raise CommandError("not attached: `attach PID` first")
        args = parser.parse_args(argv)
        status = command.run(session, args) or 0
        session.out.flush()
        return status
    except QuitRequested:
        raise
    except _HelpShown:
        return 0
    except ProcessExitedError as e:
        first = session.mark_exited()
        print_error(session, e)
        if first and session.snapshot is not None:
            session.note("target process %d exited; the last snapshot is kept (threads, bt, frame, locals still work)"
                         % session.pid)
        return 1
    except (CommandError, SnapshotError) as e:
        print_error(session, e)
        return getattr(e, "exit_code", 1) or 1
    except KeyboardInterrupt:
        session.out.flush()
        session.err.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - one line, the session goes on
        print_error(session, CommandError("internal error in %s: %s: %s" % (cls.name, type(e).__name__, e)))
        if os.environ.get("PYSPY_REPL_DEBUG"):
            import traceback
            traceback.print_exc()
        return 1


PATH_WORDS = ("print", "p")


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def split_line(session: Session, line: str) -> Optional[List[str]]:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return []
    try:
        first = stripped.split()
        if first[0] in PATH_WORDS or (first[0] == "watch" and any(w in PATH_WORDS for w in first[1:5])):
            # print paths keep their quotes: p payload['key'] (the path parser reads the literal)
            words = shlex.split(stripped, comments=True, posix=False)
            return [_unquote(w) if w.startswith("-") or i == 0 else w for i, w in enumerate(words)]
        return shlex.split(stripped, comments=True)
    except ValueError as e:
        print_error(session, CommandError("cannot parse %r: %s" % (stripped, e)))
        return None


# --------------------------------------------------------------------------- options
def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Interactive, read-only inspector for a live Python process.",
        usage="%(prog)s [--pid PID | -- COMMAND ARGS...] [-c CMD]... [--no-color]",
        epilog="Commands at the prompt: `help`.  Subcommands without a prompt: %s SUBCOMMAND --help."
               % prog)
    parser.add_argument("--pid", "-p", type=int, help="process to inspect")
    parser.add_argument("-c", dest="commands", action="append", default=[], metavar="CMD",
                        help="run CMD and exit (repeatable; the exit status is non-zero if any failed)")
    parser.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR=1, non-terminals)")
    return parser


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


def start_child(command: List[str], session: Session, timeout: float = 20.0) -> Optional[int]:
    """Start ``command`` and wait until its Python interpreter can be read; returns its pid."""
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        print_error(session, CommandError("cannot start %s: %s" % (command[0], e.strerror or e)))
        return None
    session.child = child
    session.pid = child.pid
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print_error(session, CommandError("%s exited with status %s before it could be inspected"
                                              % (command[0], child.returncode)))
            return None
        try:
            session.take_snapshot(locals=True)
            return child.pid
        except SnapshotError as e:
            last = e
            session.target = None
            time.sleep(0.1)
    print_error(session, last or CommandError("timed out waiting for the interpreter"))
    return child.pid


def stop_child(session: Session) -> None:
    child = session.child
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(3)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(3)
    session.note("stopped %s (pid %d) that this session started" % (" ".join(map(str, child.args))[:60], child.pid))


def banner(session: Session) -> str:
    snap = session.snapshot
    if snap is None:
        return "pyspy-repl: not attached (attach PID); `help` lists the commands"
    command = " ".join(snap.command_line) or snap.executable
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
    if options.pid is not None and child_command:
        parser.print_usage(sys.stderr)
        sys.stderr.write("%s: error: give --pid or -- COMMAND, not both\n" % prog)
        return 2
    if options.pid is None and not child_command and not options.commands and sys.stdin.isatty():
        if not argv:
            pass  # an empty prompt: `attach PID` from there
    scripted = bool(options.commands) or not sys.stdin.isatty()
    session = Session(options.pid)
    session.interactive = not scripted
    session.color = not scripted and _wants_color(options.no_color)
    session.live = session.interactive and sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
    registry = repl_registry()
    session.registry = registry
    session.dispatch = lambda words: run_words(session, registry, words)

    try:
        # -- the target --
        if child_command:
            if start_child(child_command, session) is None:
                return 1
        elif options.pid is not None:
            try:
                session.take_snapshot(locals=True)
            except (SnapshotError, CommandError) as e:
                print_error(session, e)
                if scripted:
                    return getattr(e, "exit_code", 1) or 1
                session.pid = None
        if scripted:
            lines = options.commands if options.commands else sys.stdin
            return run_script(session, registry, lines)
        return run_prompt(session, registry)
    finally:
        session.stop_jobs()
        stop_child(session)
        session.close()


def run_script(session: Session, registry, lines) -> int:
    from .commands.navigate import QuitRequested
    failed = 0
    for line in lines:
        words = split_line(session, line)
        if words is None:
            failed += 1
            continue
        if not words:
            continue
        try:
            status = run_words(session, registry, words)
        except QuitRequested:
            break
        failed += status != 0
        message = session.check_alive()
        if message:
            session.note(message)
    return 1 if failed else 0


def run_prompt(session: Session, registry) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.output import ColorDepth

    from .commands.navigate import QuitRequested
    from .completion import ReplCompleter

    try:
        path = _history_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        history = FileHistory(path)
    except OSError:
        history = InMemoryHistory()
    prompt = PromptSession(history=history, completer=ReplCompleter(session, registry),
                           complete_while_typing=False,
                           color_depth=None if session.color else ColorDepth.DEPTH_1_BIT)
    session.out.write(banner(session) + "\n")
    session.out.flush()
    while True:
        message = session.check_alive()
        if message:
            session.note(message)
        text = session.prompt_text()
        shown = FormattedText([("ansicyan bold", text)]) if session.color else text
        try:
            line = prompt.prompt(shown)
        except KeyboardInterrupt:
            continue            # Ctrl-C at the prompt clears the line
        except EOFError:
            session.out.write("\n")
            return 0
        words = split_line(session, line)
        if not words:
            continue
        try:
            run_words(session, registry, words)
        except QuitRequested:
            return 0


if __name__ == "__main__":
    sys.exit(main())
