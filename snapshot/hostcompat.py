"""What depends on the Python that runs pyspy-repl (never the target's), kept in one place.

pyspy-repl runs on 3.9 and later, also inside gdb's and lldb's embedded
Python; the target's CPython version is a different thing, known only to
``layouts/``.
"""
from __future__ import annotations

import sys

#: Options of the model's dataclasses: always frozen (hashable, safe to share between
#: threads), slotted where the host allows it (``dataclass(slots=)`` needs 3.10): smaller
#: values, faster to hash while sampling.
FROZEN = {"frozen": True, "slots": True} if sys.version_info >= (3, 10) else {"frozen": True}

#: 3.11+ hosts read PEP 626/657 location tables in C: a code object of our own carrying a
#: target's table answers ``co_lines()`` (the format is the same for 3.11 and later targets).
LOCATIONS_IN_C = sys.version_info >= (3, 11)
