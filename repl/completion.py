"""Tab completion: command names, flags, thread ids and names, frame numbers, local names and
(one level at a time) attribute names / dict keys of the selected frame's values.

``candidates`` is the front-end-neutral part (``Dispatcher.completions`` calls
it for the REPL and debuggers); ``ReplCompleter`` adapts it to prompt_toolkit.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, Iterable, List, Type


try:
    from prompt_toolkit.completion import Completer, Completion
except ImportError:  # the scripted mode works without prompt_toolkit
    Completer = object  # type: ignore
    Completion = None   # type: ignore

THREAD_COMMANDS = ("thread", "t")
FRAME_COMMANDS = ("frame", "f", "up", "down")
PATH_COMMANDS = ("print", "p")
COMMAND_ARG_COMMANDS = ("help", "h", "watch")


def _flags(cls) -> List[str]:
    try:
        parser = cls().parser(cls.name)
    except Exception:  # noqa: BLE001
        return []
    out = []
    for action in parser._actions:
        out.extend(s for s in action.option_strings if s.startswith("--") or len(s) == 2)
    return out


def _choices(cls) -> List[str]:
    try:
        parser = cls().parser(cls.name)
    except Exception:  # noqa: BLE001
        return []
    out: List[str] = []
    for action in parser._actions:
        if not action.option_strings and action.choices:
            out.extend(str(c) for c in action.choices)
    return out


def candidates(session, registry: Dict[str, Type], text: str) -> List[str]:
    """Completions for the word being typed at the end of ``text`` (testable without a terminal)."""
    words = text.split()
    if not words or (len(words) == 1 and not text.endswith(" ")):
        prefix = words[0] if words else ""
        return sorted(n for n in registry if n.startswith(prefix) and n != "?")
    current = "" if text.endswith(" ") else words[-1]
    name = words[0]
    if name == "watch":
        rest = words[1:] if current == "" else words[1:-1]
        rest = [w for w in rest if not w.startswith("-")]
        if rest and rest[0] in registry:   # completing the watched command's own arguments
            inner = text[text.index(rest[0]):]
            return candidates(session, registry, inner)
        if not current.startswith("-"):
            return sorted(n for n in registry if n.startswith(current) and n != "?")
    cls = registry.get(name)
    if cls is None:
        return []
    if current.startswith("-"):
        return sorted(f for f in set(_flags(cls)) if f.startswith(current))
    out: List[str] = []
    if name in COMMAND_ARG_COMMANDS:
        out = [n for n in registry if n != "?"]
    elif name in THREAD_COMMANDS:
        snap = session.snapshot
        if snap is not None:
            for thread in snap.threads:
                out.append("%#x" % thread.thread_id)
                if thread.native_id:
                    out.append(str(thread.native_id))
                if thread.name:
                    out.append(thread.name)
    elif name in FRAME_COMMANDS:
        thread = session.current_thread(required=False)
        if thread is not None:
            out = [str(i) for i in range(len(thread.frames))]
    elif name in PATH_COMMANDS:
        out = _path_candidates(session, current)
    else:
        out = _choices(cls)
    return sorted({c for c in out if c.startswith(current)}, key=lambda c: (len(c.split(".")), c))


def _path_candidates(session, current: str) -> List[str]:
    frame = session.current_frame(required=False)
    if frame is None:
        return []
    cut = max(current.rfind("."), current.rfind("["))
    if cut < 0:
        return [local.name for local in frame.locals or ()]
    base = current[:cut]
    try:
        from .commands.inspect import evaluate
        value, _ = evaluate(session, base)
        if not value.addr:
            return []
        objects = session.objects()
        kind = objects.kind(value.addr)
        if current[cut] == "[":
            if kind == "dict":
                keys = []
                for key_addr, _ in objects.dict_items(value.addr, 200):
                    if objects.is_text(key_addr):
                        keys.append("%s[%r]" % (base, objects.string(key_addr, 200)))
                    elif objects.kind(key_addr) == "int":
                        keys.append("%s[%d]" % (base, objects.int_value(key_addr)))
                return keys
            if kind in ("list", "tuple"):
                return ["%s[%d]" % (base, i) for i in range(len(objects.sequence_items(value.addr, 200)))]
            return []
        if kind == "module":
            names = [n for n, _ in _module_items(objects, value.addr)]
        elif kind == "dict":
            names = []
        else:
            names = [n for n, _ in objects.instance_dict_items(value.addr)] if kind == "instance" else []
        return ["%s.%s" % (base, n) for n in names]
    except Exception:  # noqa: BLE001 - completion must never break the prompt
        return []


def _module_items(objects, module_addr: int) -> Iterable:
    return objects.instance_dict_items(module_addr)   # a module's md_dict sits at tp_dictoffset


class ReplCompleter(Completer):
    """prompt_toolkit's side of ``Dispatcher.completions``."""

    def __init__(self, session, dispatcher):
        self.session = session
        self.dispatcher = dispatcher

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        current = "" if not text or text.endswith(" ") else text.split()[-1]
        try:
            found = self.dispatcher.completions(self.session, text)
        except Exception:  # noqa: BLE001
            return
        for item in found:
            yield Completion(item, start_position=-len(current))
