"""The command set (one module per group of commands; ``repl.dispatch`` runs them).

Command modules are imported on demand: ``pyspy-repl dump`` must not pay for
the REPL's commands (or the sampler and writers behind ``record``), because
an on-call engineer runs it in a loop.  ``load_cli(name)`` imports the one
module a CLI subcommand needs; ``load_all()`` imports every command (the REPL
and debugger front ends).
"""
from __future__ import annotations

from .base import CLI_COMMANDS, REPL_COMMANDS, Command, CommandError, QuitRequested, register  # noqa: F401

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Optional, Type


#: CLI subcommand -> module that defines it.
CLI_MODULES: Dict[str, str] = {"dump": "dump", "record": "record", "top": "top", "watch": "hangwatch",
                               "save": "save"}
#: Every command module (the REPL's set).
ALL_MODULES = ("dump", "record", "top", "hangwatch", "navigate", "inspect", "sample", "record_bg", "watch_cmd",
               "native_cmd", "tasks", "save")


def load_cli(name: str) -> Optional[Type[Command]]:
    """The class of CLI subcommand ``name``, importing only its module; None if there is none."""
    module = CLI_MODULES.get(name)
    if module is None:
        return None
    __import__("%s.%s" % (__name__, module))
    return CLI_COMMANDS.get(name)


def load_all() -> Dict[str, Type[Command]]:
    """Import every command module; returns the prompt's table (name or alias -> class)."""
    for module in ALL_MODULES:
        __import__("%s.%s" % (__name__, module))
    return REPL_COMMANDS
