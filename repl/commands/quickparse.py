"""A one-shot command's flags parsed without argparse, or not at all.

Why: ``argparse`` brings ``re``, ``gettext`` and ``locale`` with it, and building a
parser runs ``gettext`` for every ``add_argument``; for ``pyspy-repl dump --pid N``
(run in a loop by an engineer on call) that was about a tenth of its CPU.  This parser
takes the same ``add_argument`` declarations and parses only the plain forms:
``--flag``, ``--opt VALUE``, ``--opt=VALUE``, ``-o VALUE``, ``-oVALUE``, for the
``store``, ``store_true``, ``store_false`` and ``append`` actions (and an empty
``-- COMMAND ...`` remainder: words for it go to argparse).  Everything else
(``--help``, an unknown or abbreviated option, a value that starts with ``-``, a
conversion or choice that fails, a positional argument, two options of one exclusive
group, a declaration it does not know) raises ``NotQuick``, and the caller parses the
same words with argparse, so help, errors and every rarer form are argparse's own.
The result is an ``argparse.Namespace`` look-alike with the same attributes.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, List, Optional, Sequence

_ACTIONS = ("store", "store_true", "store_false", "append")
_KNOWN = frozenset(("action", "dest", "type", "default", "help", "metavar", "choices", "required"))


class NotQuick(Exception):
    """These words (or these declarations) are for argparse."""


class Namespace:
    """What ``argparse.Namespace`` offers the commands: attributes, ``in``, ``==``, its repr."""

    def __init__(self, **values: Any):
        self.__dict__.update(values)

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __eq__(self, other) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __repr__(self) -> str:
        return "Namespace(%s)" % ", ".join("%s=%r" % item for item in self.__dict__.items())


class _Option:
    __slots__ = ("flags", "dest", "action", "convert", "default", "choices", "required", "group")

    def __init__(self, flags: Sequence[str], dest: str, action: str, convert, default, choices, required: bool,
                 group: Optional[int]):
        self.flags = tuple(flags)
        self.dest = dest
        self.action = action
        self.convert = convert
        self.default = default
        self.choices = choices
        self.required = required
        self.group = group


class QuickParser:
    """Collects ``add_argument`` declarations like an argparse parser; ``parse_args`` or ``NotQuick``."""

    def __init__(self) -> None:
        self._options: List[_Option] = []
        self._by_flag: Dict[str, _Option] = {}
        self._groups = 0
        self._remainder: List[str] = []

    # -- declarations (the subset of argparse's API the commands use) -----------------------
    def add_argument(self, *flags: str, _group: Optional[int] = None, **spec: Any) -> None:
        if len(flags) == 1 and not flags[0].startswith("-") and spec.get("nargs") == "..." and _group is None \
                and not set(spec) - {"nargs", "metavar", "help"}:
            # ``-- COMMAND ...`` (argparse.REMAINDER): empty unless words follow, which argparse parses.
            self._remainder.append(flags[0])
            return
        if not flags or not all(len(f) > 1 and f[0] == "-" for f in flags) or set(spec) - _KNOWN:
            raise NotQuick("a declaration argparse must handle")
        action = spec.get("action", "store")
        if action not in _ACTIONS:
            raise NotQuick("action %r" % (action,))
        convert = spec.get("type")
        default = spec.get("default", {"store_true": False, "store_false": True}.get(action))
        if isinstance(default, str) and convert is not None:
            raise NotQuick("a default argparse converts")  # argparse runs type() on str defaults
        longs = [f for f in flags if f.startswith("--")]
        dest = spec.get("dest") or (longs[0] if longs else flags[0]).lstrip("-").replace("-", "_")
        option = _Option(flags, dest, action, convert, default, spec.get("choices"), bool(spec.get("required")),
                         _group)
        for flag in flags:
            if flag in self._by_flag:
                raise NotQuick("flag %s declared twice" % flag)
            self._by_flag[flag] = option
        self._options.append(option)

    def add_mutually_exclusive_group(self, required: bool = False) -> "_Group":
        if required:
            raise NotQuick("a required group")
        self._groups += 1
        return _Group(self, self._groups)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> "QuickParser":
        return self  # groups only arrange the help text

    def __getattr__(self, name: str):
        raise NotQuick("parser.%s is argparse's" % name)  # set_defaults, add_subparsers...

    # -- parsing -----------------------------------------------------------------------------
    def parse_args(self, words: Sequence[str]) -> Namespace:
        values: Dict[str, Any] = {o.dest: (list(o.default) if isinstance(o.default, list) else o.default)
                                  for o in self._options}
        for dest in self._remainder:
            values[dest] = []
        seen: Dict[int, _Option] = {}
        given = set()
        position = 0
        words = list(words)
        while position < len(words):
            word = words[position]
            position += 1
            option, value = self._option_of(word)
            if option.group is not None and seen.setdefault(option.group, option) is not option:
                raise NotQuick("two options of one exclusive group")
            given.add(id(option))
            if option.action in ("store_true", "store_false"):
                if value is not None:
                    raise NotQuick("a value given to a flag")
                values[option.dest] = option.action == "store_true"
                continue
            if value is None:
                if position >= len(words) or words[position].startswith("-"):
                    raise NotQuick("a missing value, or one argparse may read as an option")
                value = words[position]
                position += 1
            value = self._converted(option, value)
            if option.action == "append":
                current = values[option.dest]
                values[option.dest] = (list(current) if current is not None else []) + [value]
            else:
                values[option.dest] = value
        if any(o.required and id(o) not in given for o in self._options):
            raise NotQuick("a required option is missing")
        return Namespace(**values)

    def _option_of(self, word: str):
        """(option, attached value or None) for one word, else NotQuick."""
        if word.startswith("--"):
            flag, equals, value = word.partition("=")
            option = self._by_flag.get(flag)
            if option is None or flag == "--":
                raise NotQuick("not a known option: %r" % word)
            return option, (value if equals else None)
        if word.startswith("-") and len(word) > 1:
            option = self._by_flag.get(word[:2])
            if option is None:
                raise NotQuick("not a known option: %r" % word)
            if len(word) == 2:
                return option, None
            if option.action in ("store_true", "store_false"):
                raise NotQuick("combined short flags")
            return option, word[2:]
        raise NotQuick("a positional argument")

    @staticmethod
    def _converted(option: _Option, text: str):
        value = text
        if option.convert is not None:
            try:
                value = option.convert(text)
            except Exception as e:  # noqa: BLE001 - argparse says what was wrong
                raise NotQuick("conversion failed") from e
        if option.choices is not None and value not in option.choices:
            raise NotQuick("not one of the choices")
        return value


class _Group:
    """A mutually exclusive group: its options are the parser's, remembered as one group."""

    def __init__(self, parser: QuickParser, number: int):
        self._parser = parser
        self._number = number

    def add_argument(self, *flags: str, **spec: Any) -> None:
        self._parser.add_argument(*flags, _group=self._number, **spec)
