"""Old name of the pause, kept while other branches move to ``snapshot.process.pause``
(or ``LiveProcess.paused()``)."""
from .process.pause import not_paused, paused

__all__ = ["not_paused", "paused"]
