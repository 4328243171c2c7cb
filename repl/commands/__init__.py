"""The command set; importing this package registers every command."""
from .base import REGISTRY, ArgumentParser, Command, CommandError, command_names, register  # noqa: F401
from . import dump  # noqa: F401,E402

try:  # commands added by other modules register themselves when present
    from . import _extra  # noqa: F401
except ImportError:
    pass
