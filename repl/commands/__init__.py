"""The command set; importing this package registers every command."""
from .base import REGISTRY, ArgumentParser, Command, CommandError, command_names, register  # noqa: F401
from . import dump  # noqa: F401,E402
from . import record, top  # noqa: F401,E402
from . import hangwatch  # noqa: F401,E402
from . import navigate  # noqa: F401,E402
from . import inspect  # noqa: F401,E402
from . import sample  # noqa: F401,E402
from . import record_bg  # noqa: F401,E402
from . import watch_cmd  # noqa: F401,E402

try:  # commands added by other modules register themselves when present
    from . import _extra  # noqa: F401
except ImportError:
    pass
