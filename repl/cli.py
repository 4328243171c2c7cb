"""Command-line entry points: ``pyspy-repl`` and ``pyspy-snapshot``.

``pyspy-repl SUBCOMMAND ...`` runs one command (dump, record, top, watch...)
and exits; ``pyspy-repl --pid N`` opens the interactive prompt.
``pyspy-snapshot`` offers the same subcommands without the prompt.  This is
the only place (with the REPL loop) that prints errors and picks exit codes.
"""
from __future__ import annotations

import sys
from typing import List, Optional

from snapshot.errors import SnapshotError

from .commands import CLI_MODULES, REGISTRY, CommandError, load_cli
from .commands.base import _HelpShown
from .session import Session

PROG = "pyspy-repl"


def print_error(error: BaseException, prog: str = PROG, stream=None) -> None:
    stream = stream or sys.stderr
    stream.write("%s: error: %s\n" % (prog, error))
    hint = getattr(error, "hint", "")
    if hint:
        stream.write("  hint: %s\n" % hint)
    stream.flush()


def run_command(name: str, argv: List[str], session: Session, prog: str = PROG) -> int:
    """Parse ``argv`` for one registered command and run it, turning errors into exit codes."""
    command = REGISTRY[name]()
    try:
        args = command.parser("%s %s" % (prog, command.name)).parse_args(argv)
        return command.run(session, args) or 0
    except _HelpShown:
        return 0
    except CommandError as e:
        print_error(e, prog, session.err)
        return e.exit_code
    except SnapshotError as e:
        print_error(e, prog, session.err)
        return e.exit_code
    except KeyboardInterrupt:
        session.err.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


def _usage(prog: str) -> str:
    names = sorted(CLI_MODULES) + ["gdb-path", "lldb-path"]
    return ("usage: %s SUBCOMMAND [options]   (subcommands: %s)\n"
            "       %s --pid PID             (interactive prompt; see --help)\n" % (prog, ", ".join(names), prog))


def main(argv: Optional[List[str]] = None, prog: str = PROG, interactive: bool = True) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("gdb-path", "lldb-path"):
        from .debuggers.loaderpath import main as loader_main
        return loader_main(argv[0][:-len("-path")], argv[1:])
    if argv and load_cli(argv[0]) is not None:
        session = Session()
        try:
            return run_command(argv[0], argv[1:], session, prog)
        finally:
            session.close()
    if interactive:
        try:
            from .interactive import main as repl_main
        except ImportError:
            repl_main = None
        if repl_main is not None:
            return repl_main(argv, prog)
    if argv in ([], ["-h"], ["--help"]):
        sys.stdout.write(_usage(prog))
        return 0 if argv else 2
    sys.stderr.write("%s: error: unknown subcommand %r\n%s" % (prog, argv[0], _usage(prog)))
    return 2


def snapshot_main(argv: Optional[List[str]] = None) -> int:
    """``pyspy-snapshot``: the same subcommands, never a prompt."""
    return main(argv, prog="pyspy-snapshot", interactive=False)


def console_main() -> None:
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def snapshot_console_main() -> None:
    try:
        code = snapshot_main()
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    console_main()
