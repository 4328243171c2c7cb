"""Command-line entry points: ``pyspy-repl`` and ``pyspy-snapshot``.

``pyspy-repl SUBCOMMAND ...`` runs one command (dump, record, top, watch...)
and exits; ``pyspy-repl --pid N`` opens the interactive prompt.
``pyspy-snapshot`` offers the same subcommands without the prompt.  Both run
them through ``repl.dispatch`` (errors: one line, the error's exit code).
"""
from __future__ import annotations

if __name__ == "__main__":  # ``python -m repl.cli``: hold Ctrl-C before anything else (repl/entry.py)
    import repl.entry  # noqa: F401

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List, Optional


# Nothing else is imported at module level: a Ctrl-C during the imports must
# reach console_main's handler (one line, status 130), not print a traceback.

PROG = "pyspy-repl"


def _usage(prog: str, prompt: bool = True) -> str:
    """Usage and every subcommand with its line; the prompt's form only where there is one."""
    from .helptext import subcommand_lines
    text = "usage: %s SUBCOMMAND [options]\n" % prog
    if prompt:
        text += "       %s [--pid PID | --core CORE | -- COMMAND ...]   (interactive prompt)\n" % prog
    return text + "\n" + subcommand_lines(prog)


def main(argv: Optional[List[str]] = None, prog: str = PROG, interactive: bool = True) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        from .helptext import version
        sys.stdout.write("%s %s\n" % (prog, version()))
        return 0
    if argv and argv[0] == "completions":
        from .helptext import SHELLS, completion_script
        if len(argv) != 2 or argv[1] not in SHELLS:
            sys.stderr.write("usage: %s completions {%s}\n" % (prog, ",".join(SHELLS)))
            return 2
        sys.stdout.write(completion_script(argv[1], prog))
        return 0
    from .dispatch import CLI, Dispatcher
    from .session import Session
    from .streams import GuardedStream

    if argv and argv[0] in ("gdb-path", "lldb-path"):
        from .debuggers.loaderpath import main as loader_main
        return loader_main(argv[0][:-len("-path")], argv[1:])
    dispatcher = Dispatcher(CLI, prog)
    if argv and dispatcher.command_class(argv[0]) is not None:
        err = sys.stderr if sys.stderr is not None else open(os.devnull, "w")
        session = Session(out=GuardedStream(sys.stdout), err=err)
        try:
            return dispatcher.run_argv(session, argv[0], argv[1:])
        finally:
            session.close()
    if interactive:
        try:
            from .interactive import main as repl_main
        except ImportError:
            repl_main = None
        if repl_main is not None:
            from .startup import collect_again
            collect_again()
            return repl_main(argv, prog)
    if argv in ([], ["-h"], ["--help"]):
        sys.stdout.write(_usage(prog, interactive))
        return 0 if argv else 2
    sys.stderr.write("%s: error: unknown subcommand %r\n%s" % (prog, argv[0], _usage(prog, interactive)))
    return 2


def snapshot_main(argv: Optional[List[str]] = None) -> int:
    """``pyspy-snapshot``: the same subcommands, never a prompt."""
    return main(argv, prog="pyspy-snapshot", interactive=False)


def _run_console(entry) -> None:
    """Run ``entry`` as a console script: a Ctrl-C at any moment (imports, attach, sampling)
    is one ``interrupted`` line and status 130, and stdout trouble at exit is silent."""
    finish = sys.exit   # until repl.startup is imported (a Ctrl-C may come first)
    try:
        from .startup import finish, hold_collection, use_code_cache
        hold_collection()   # until a long-running command starts (Command.one_shot)
        use_code_cache()    # before any of our data classes is declared (repl/startup.py)
        from . import interrupts
        interrupts.install()
        interrupts.check()  # a Ctrl-C that repl.entry remembered before this handler was in place
        from .streams import prepare_standard_streams, quiet_exit_flush
        prepare_standard_streams()
        code = entry()
        quiet_exit_flush()
    except KeyboardInterrupt:
        try:
            if sys.stderr is not None:
                sys.stderr.write("interrupted\n")
                sys.stderr.flush()
        except (OSError, ValueError):
            pass
        code = 130
    finish(code)


def console_main() -> None:
    _run_console(main)


def snapshot_console_main() -> None:
    _run_console(snapshot_main)


if __name__ == "__main__":
    console_main()
