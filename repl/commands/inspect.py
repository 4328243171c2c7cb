"""``print`` / ``p``: read a value reachable from the selected frame, entirely from memory.

EXPR is a *path*, never code: a name (a local of the selected frame, else a
global of the frame's module, else a builtin) followed by attribute accesses
(``.name``) and subscripts (``[3]``, ``[-1]``, ``['key']``, ``["key"]``,
``[0x10]``).  The path is parsed here by a small tokenizer; nothing is
evaluated, locally or in the target.  Values are rendered by the engine's
ObjectReader (CPython's own ``repr()`` for builtin types, ``object.__repr__``
for the rest).
"""
from __future__ import annotations

import ast
import re
from layouts.records import dataclass
from typing import List, Optional, Tuple, Union

from snapshot.errors import SnapshotError

from .base import Command, CommandError, register

_NAME = re.compile(r"[^\W\d]\w*", re.UNICODE)
_INT = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|\d+)")
_STRING = re.compile(r"""(?:[rRbB]{0,2})?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.DOTALL)


class PathError(CommandError):
    """A malformed or unresolvable path."""


@dataclass(frozen=True)
class Attr:
    name: str

    def __str__(self) -> str:
        return "." + self.name


@dataclass(frozen=True)
class Index:
    key: Union[int, str]

    def __str__(self) -> str:
        return "[%r]" % (self.key,)


Step = Union[Attr, Index]


def parse_path(text: str) -> Tuple[str, List[Step]]:
    """``payload['nested']['a'][1]`` -> ('payload', [Index('nested'), Index('a'), Index(1)])."""
    text = text.strip()
    pos = 0

    def skip_ws():
        nonlocal pos
        while pos < len(text) and text[pos] in " \t":
            pos += 1

    m = _NAME.match(text, pos)
    if not m:
        raise PathError("bad expression %r: it must start with a name (a local, global or builtin)" % text)
    root = m.group()
    pos = m.end()
    steps: List[Step] = []
    while True:
        skip_ws()
        if pos >= len(text):
            break
        ch = text[pos]
        if ch == ".":
            pos += 1
            skip_ws()
            m = _NAME.match(text, pos)
            if not m:
                raise PathError("bad expression %r: a name must follow '.' (at column %d)" % (text, pos + 1))
            steps.append(Attr(m.group()))
            pos = m.end()
        elif ch == "[":
            pos += 1
            skip_ws()
            m = _INT.match(text, pos)
            if m:
                key: Union[int, str] = int(m.group(), 0)
            else:
                m = _STRING.match(text, pos)
                if not m:
                    raise PathError("bad expression %r: only [int] and ['str'] subscripts (at column %d)"
                                    % (text, pos + 1))
                try:
                    key = ast.literal_eval(m.group())   # a lone string literal: safe
                except (ValueError, SyntaxError):
                    raise PathError("bad string literal %s" % m.group()) from None
                if isinstance(key, bytes):
                    raise PathError("bytes keys are not supported: %s" % m.group())
            pos = m.end()
            skip_ws()
            if pos >= len(text) or text[pos] != "]":
                raise PathError("bad expression %r: missing ']' (at column %d)" % (text, pos + 1))
            pos += 1
            steps.append(Index(key))
        else:
            raise PathError("bad expression %r: unexpected %r at column %d (only .attr and [key] are allowed)"
                            % (text, ch, pos + 1))
    return root, steps


@dataclass
class Value:
    """A resolved path: the remote address, or (for a tagged small int) only its text."""

    addr: int
    text: Optional[str] = None
    origin: str = ""
    #: an instance's ``__dict__`` that has no dict object (3.11+ inline values): its (name, addr) pairs
    pairs: Optional[List[Tuple[str, int]]] = None


def resolve_root(session, name: str) -> Value:
    frame = session.current_frame()
    if frame.locals is not None:
        for local in frame.locals:
            if local.name == name:
                if not local.addr:
                    return Value(0, local.repr, "local")
                return Value(local.addr, None, "local")
    objects = session.objects()
    if frame.globals_addr:
        # The frame's own globals (exact even for exec'd code with its own namespace).
        addr = objects.dict_get(frame.globals_addr, name)
        if addr:
            return Value(addr, None, "global")
        module_addr, module_name = None, "?"
        name_addr = objects.dict_get(frame.globals_addr, "__name__")
        if name_addr and objects.is_text(name_addr):
            module_name = objects.string(name_addr, 200)
    else:
        module_addr, module_name = session.frame_module(frame)
    if module_addr:
        addr = objects.getattr(module_addr, name)
        if addr:
            return Value(addr, None, "global of %s" % module_name)
    builtins = session.module_addr(session.objects().facts.builtins_module)
    if builtins:
        addr = objects.getattr(builtins, name)
        if addr:
            return Value(addr, None, "builtin")
    raise PathError("name %r is not a local of frame #%d (%s), a global of module %s, or a builtin"
                    % (name, session.frame_index, frame.function, module_name))


def step(session, value: Value, item: Step, shown: str) -> Value:
    objects = session.objects()
    if value.pairs is not None:
        if isinstance(item, Index):
            for name, addr in value.pairs:
                if name == item.key:
                    return Value(addr)
            raise PathError("%s has no key %r" % (shown, item.key))
        raise PathError("%s is a dict: use [key] (its attributes are not read)" % shown)
    if not value.addr:
        raise PathError("%s is %s (a small int without an object): it has no %s" % (shown, value.text, item))
    kind = objects.kind(value.addr)
    if isinstance(item, Attr):
        if item.name == "__class__":
            return Value(objects.type_addr(value.addr))
        if item.name == "__dict__" and kind in ("instance", "other"):
            # the instance's own namespace, not the class's `__dict__` descriptor
            pairs = objects.instance_dict_items(value.addr)
            return Value(0, _dict_text(objects, pairs), pairs=pairs)
        addr = None
        if kind in ("instance", "other", "module", "type"):
            addr = objects.getattr(value.addr, item.name)
        if addr is None and kind not in ("module", "type"):
            # class attributes (and methods) seen through the instance: the type's own dict
            addr = objects.getattr(objects.type_addr(value.addr), item.name)
        if not addr:
            tname = objects.type_name(objects.type_addr(value.addr))
            raise PathError("%r object %s has no attribute %r in its __dict__ or its class's"
                            % (tname, shown, item.name))
        return Value(addr)
    key = item.key
    if kind in ("list", "tuple"):
        if not isinstance(key, int):
            raise PathError("%s is a %s: indices must be integers, not %r" % (shown, kind, key))
        # by the true length, not the display-capped item list
        length, addr = objects.sequence_item(value.addr, key)
        if addr is None:
            raise PathError("%s[%d]: index out of range (length %d)" % (shown, key, length))
        return Value(addr)
    if kind == "dict":
        addr = objects.dict_get(value.addr, key)
        if not addr:
            raise PathError("%s has no key %r" % (shown, key))
        return Value(addr)
    tname = objects.type_name(objects.type_addr(value.addr))
    raise PathError("%s is a %r: only lists, tuples and dicts can be indexed" % (shown, tname))


def _dict_text(objects, pairs, max_repr: int = 8192, depth: int = 6) -> str:
    parts = []
    for name, addr in pairs:
        try:
            parts.append("%r: %s" % (name, objects.repr(addr, max_repr, depth)))
        except SnapshotError as e:
            parts.append("%r: <unreadable: %s>" % (name, e))
    return "{" + ", ".join(parts) + "}"


def evaluate(session, text: str) -> Tuple[Value, str]:
    root, steps = parse_path(text)
    value = resolve_root(session, root)
    shown = root
    for item in steps:
        value = step(session, value, item, shown)
        shown += str(item)
    return value, shown


@register
class PrintCommand(Command):
    name = "print"
    aliases = ("p",)
    on_core = in_debugger = on_snapshot_file = True   # a snapshot file carries the memory read
    needs = "the process's memory"
    help = ("Print a value reachable from the selected frame: a local, a global of the frame's module\n"
            "or a builtin, then .attr and [int] / ['key'] steps, e.g.  p self.items[0]['name']\n"
            "Read from memory only: nothing runs in the target (objects with a custom __repr__\n"
            "show as <Class object at 0x...>; reach into them with .attr).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("expr", nargs="+", metavar="EXPR", help="path, e.g. payload['nested']['a'][1]")
        parser.add_argument("--depth", "-d", type=int, default=16, metavar="N",
                            help="nested containers deeper than N show as ... (default 16)")
        parser.add_argument("--max-repr", "-m", type=int, default=8192, metavar="N",
                            help="cut the repr after N characters (default 8192)")
        parser.add_argument("--info", "-i", action="store_true", help="also show type, address and where the name came from")
        parser.add_argument("--fresh", action="store_true", help="take a new snapshot first")

    def run(self, session, args) -> int:
        session.ensure_snapshot(locals=True, fresh=args.fresh)
        text = " ".join(args.expr)
        value, shown = evaluate(session, text)
        if not value.addr:
            session.out.write(value.text + "\n")
            return 0
        objects = session.objects()
        try:
            rendered = objects.repr(value.addr, max(4, args.max_repr), max(0, args.depth))
        except SnapshotError as e:
            raise CommandError("%s: unreadable (%s); the frame may have moved on: try --fresh" % (shown, e)) from None
        if args.info:
            tname = objects.type_name(objects.type_addr(value.addr))
            session.out.write(session.style("%s: %s at 0x%x%s" % (
                shown, tname, value.addr, (" (%s)" % value.origin) if value.origin else ""), "dim") + "\n")
        session.out.write(rendered + "\n")
        return 0
