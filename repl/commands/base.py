"""One class per command, shared by the CLI, the REPL and debugger extensions.

A command declares its name, aliases and help, builds its own argparse
parser, and runs against a ``Session`` (which holds the target, the latest
snapshot, the selected thread and frame, and the output stream).  Front ends
only parse a line or argv, pick the class, and call ``run``.
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Optional, Sequence, Type


class CommandError(Exception):
    """A user error inside a command (bad argument, nothing selected...): one line, no traceback."""

    exit_code = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so a bad REPL line never ends the session."""

    def error(self, message: str):
        raise CommandError("%s: %s" % (self.prog, message))

    def exit(self, status: int = 0, message: Optional[str] = None):
        if message:
            raise CommandError(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    """--help was printed; nothing else to do."""


class Command:
    name: str = ""
    aliases: Sequence[str] = ()
    help: str = ""
    #: Available as ``pyspy-repl NAME`` / ``pyspy-snapshot NAME``.
    cli: bool = False
    #: Needs an attached target.
    needs_target: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare this command's flags."""

    def parser(self, prog: Optional[str] = None) -> ArgumentParser:
        parser = ArgumentParser(prog=prog or self.name, description=self.help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(parser)
        return parser

    def run(self, session, args: argparse.Namespace) -> int:
        raise NotImplementedError


def remainder_command(words: Optional[Sequence[str]]) -> List[str]:
    """An argparse REMAINDER (``-- COMMAND ARGS...``) without its leading ``--``."""
    command = list(words or [])
    if command and command[0] == "--":
        command = command[1:]
    return command


REGISTRY: Dict[str, Type[Command]] = {}


def register(cls: Type[Command]) -> Type[Command]:
    for name in (cls.name, *cls.aliases):
        REGISTRY[name] = cls
    return cls


def command_names() -> List[str]:
    return sorted({cls.name for cls in REGISTRY.values()})
