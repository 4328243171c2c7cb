"""One class per command, shared by the CLI, the REPL and debugger extensions.

A command declares its name, aliases and help, builds its own argparse
parser, and runs against a ``Session`` (which holds the target, the latest
snapshot, the selected thread and frame, and the output stream).  Front ends
never pick classes themselves: ``repl.dispatch`` maps words to classes,
checks the capability flags below against the session's source, parses and
runs.

Which front ends offer a command under its name:

``cli``   ``pyspy-repl NAME`` / ``pyspy-snapshot NAME`` (a one-shot subcommand);
``repl``  the prompt, scripts (``-c``) and debugger front ends.

A name may mean one class on the command line and another at the prompt
(``record``, ``watch``): the two classes set ``cli`` / ``repl`` apart.

Capability flags: what a command needs from the session's *source* (where
its data comes from: ``LIVE`` a running process, ``CORE`` a core file,
``DEBUGGER`` a process stopped inside gdb/lldb, ``SNAPSHOT_FILE`` a saved
snapshot).  Every command works on a live process; the others opt in.

``needs_live``        only on a running process (attach, ptrace, signals);
``samples``           samples over time (record, top, sample, watch): needs a running process;
``on_core``           works on a core file (its memory is all there, frozen);
``in_debugger``       works inside gdb/lldb on the stopped inferior;
``on_snapshot_file``  works on a saved snapshot (stacks and reprs only, no memory).
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    import argparse
    from typing import Dict, Optional, Sequence, Type


#: Session sources (``Session.source``).
LIVE = "live"
CORE = "core"
DEBUGGER = "debugger"
SNAPSHOT_FILE = "snapshot-file"
SOURCE_NAMES = {LIVE: "a running process", CORE: "a core file", DEBUGGER: "a process stopped in a debugger",
                SNAPSHOT_FILE: "a saved snapshot file"}


class CommandError(Exception):
    """A user error inside a command (bad argument, nothing selected...): one line, no traceback."""

    exit_code = 2


class QuitRequested(Exception):
    """Raised by `quit`: the front end ends the session."""


def terminal_columns() -> int:
    """The width ``shutil.get_terminal_size`` would give (``COLUMNS``, else the terminal, else 80)."""
    import os
    import sys
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _argparse_classes():
    """(HelpFormatter, ArgumentParser), built on first use: ``argparse`` (with ``re``,
    ``gettext`` and ``locale``) is imported only when a parser is really needed (the REPL,
    ``--help``, an error, a form the quick parser leaves to argparse)."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    import argparse

    class HelpFormatter(argparse.RawDescriptionHelpFormatter):
        """Help text as argparse writes it, with the width found without ``shutil``.

        Why: argparse builds a formatter for every ``add_argument`` (to check the metavar) and
        the stock one asks ``shutil`` for the terminal width; importing shutil (with zlib, bz2,
        lzma and fnmatch) was over a millisecond of every command's start-up, for nothing it
        needs."""

        def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
            super().__init__(prog, indent_increment, max_help_position,
                             terminal_columns() - 2 if width is None else width)

    class ArgumentParser(argparse.ArgumentParser):
        """argparse that raises instead of exiting, so a bad REPL line never ends the session."""

        def error(self, message: str):
            raise CommandError("%s: %s" % (self.prog, message))

        def exit(self, status: int = 0, message: Optional[str] = None):
            if message:
                raise CommandError(message.strip())
            raise HelpShown()

    _CLASSES = (HelpFormatter, ArgumentParser)
    return _CLASSES


_CLASSES = None


def __getattr__(name: str):
    """``HelpFormatter`` and ``ArgumentParser`` as module attributes, built on first use."""
    if name in ("HelpFormatter", "ArgumentParser"):
        return _argparse_classes()[name == "ArgumentParser"]
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


class HelpShown(Exception):
    """--help was printed; nothing else to do."""


class Command:
    name: str = ""
    aliases: Sequence[str] = ()
    help: str = ""
    #: Offered as ``pyspy-repl NAME`` / ``pyspy-snapshot NAME``.
    cli: bool = False
    #: Offered at the prompt, in scripts and in debuggers.
    repl: bool = True
    #: Needs an attached target (the REPL says "not attached" otherwise).
    needs_target: bool = True
    #: Runs briefly and exits (dump, save): the CLI leaves cyclic garbage collection off for it,
    #: as during start-up (``repl.startup.hold_collection``); any other command turns it back on.
    one_shot: bool = False
    # -- capability flags (see the module docstring) --
    needs_live: bool = False
    samples: bool = False
    on_core: bool = False
    in_debugger: bool = False
    on_snapshot_file: bool = False
    #: What the command needs that some sources lack, for the "not available" line.
    needs: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare this command's flags."""

    def parser(self, prog: Optional[str] = None) -> argparse.ArgumentParser:
        formatter, parser_class = _argparse_classes()
        parser = parser_class(prog=prog or self.name, description=self.help, formatter_class=formatter)
        self.add_arguments(parser)
        return parser

    def parse(self, words: Sequence[str], prog: Optional[str] = None):
        """``self.parser(prog).parse_args(words)``, without argparse where its plain forms
        suffice (``quickparse``): the same values; help and errors are argparse's own."""
        from .quickparse import NotQuick, QuickParser
        quick = QuickParser()
        try:
            self.add_arguments(quick)
            return quick.parse_args(words)
        except NotQuick:
            return self.parser(prog).parse_args(words)

    def run(self, session, args: argparse.Namespace) -> int:
        raise NotImplementedError

    @classmethod
    def unavailable(cls, source: Optional[str]) -> Optional[str]:
        """None when the command works on ``source``, else why not, in one line."""
        if source is None or source == LIVE:
            return None
        where = SOURCE_NAMES.get(source, source)
        if cls.samples:
            return "`%s` samples a running process over time; this session reads %s" % (cls.name, where)
        if cls.needs_live:
            return "`%s` needs a running process; this session reads %s" % (cls.name, where)
        works = {CORE: cls.on_core, DEBUGGER: cls.in_debugger, SNAPSHOT_FILE: cls.on_snapshot_file}.get(source)
        if works:
            return None
        return "`%s` does not work on %s%s" % (cls.name, where, " (it needs %s)" % cls.needs if cls.needs else "")


#: Every command class a front end may offer under each name (filled by ``register``).
CLI_COMMANDS: Dict[str, Type[Command]] = {}
REPL_COMMANDS: Dict[str, Type[Command]] = {}


def register(cls: Type[Command]) -> Type[Command]:
    for table, offered in ((CLI_COMMANDS, cls.cli), (REPL_COMMANDS, cls.repl)):
        if not offered:
            continue
        for name in (cls.name, *cls.aliases):
            holder = table.get(name)
            if holder is not None and holder is not cls and holder.__qualname__ != cls.__qualname__:
                raise ValueError("two commands are named %r: %s and %s" % (name, holder.__name__, cls.__name__))
            table[name] = cls
    return cls


def finite(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` would make a loop that never ends)."""
    import math
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        from argparse import ArgumentTypeError  # only for a bad value: start-up does not pay for it
        raise ArgumentTypeError(("not a number: %r" if value is None else "not a finite number: %r") % text)
    return value


def positive(text: str) -> float:
    """An argparse type: a finite number above zero (rates, durations, intervals)."""
    value = finite(text)
    if value <= 0:
        from argparse import ArgumentTypeError
        raise ArgumentTypeError("must be positive: %r" % text)
    return value


#: ``argparse.REMAINDER`` (its documented value), for declarations that do not import argparse.
REMAINDER = "..."


def remainder_command(words: Optional[Sequence[str]]) -> list:
    """An argparse REMAINDER (``-- COMMAND ARGS...``) without its leading ``--``."""
    command = list(words or [])
    if command and command[0] == "--":
        command = command[1:]
    return command
