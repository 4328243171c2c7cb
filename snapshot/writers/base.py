"""The one interface every output format implements.

A writer is fed samples (``add``) and renders once at the end (``finish``).
It folds samples into a ``Profile`` rather than keeping them, so a long
recording costs memory per distinct stack, and one Profile can be rendered
by several writers (``Writer(profile)``) -- e.g. a flame graph and a
speedscope file from the same recording.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from ..profile import Profile, Sample

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import ClassVar, IO, Optional


class Writer(ABC):
    """Base class: subclasses set the metadata and implement ``render``."""

    name: ClassVar[str]
    extension: ClassVar[str]  # default file extension, with the dot
    binary: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, profile: Optional[Profile] = None) -> None:
        self.profile = profile if profile is not None else Profile()

    def add(self, sample: Sample) -> None:
        self.profile.add(sample)

    def finish(self, stream: IO) -> None:
        """Write the whole output to ``stream`` (bytes if ``binary``, else text)."""
        self.render(self.profile, stream)

    @abstractmethod
    def render(self, profile: Profile, stream: IO) -> None:
        """Serialise ``profile``; must not mutate it."""
