"""Command dispatch for every front end: a line or argv -> a command class -> its output.

The REPL (``repl/interactive.py``: prompt and scripts), the one-shot CLI
(``repl/cli.py``: ``pyspy-repl SUBCOMMAND``, ``pyspy-snapshot``) and the
debugger front ends (``repl/debuggers/``: gdb and lldb) all run commands
through here, so parsing, availability checks and the one-line error style
are the same everywhere.

API for a front end::

    from repl import dispatch

    d = dispatch.Dispatcher(dispatch.REPL)     # the prompt's commands (also debuggers)
    d = dispatch.Dispatcher(dispatch.CLI, prog="pyspy-repl")   # the subcommands only
    status = d.run_line(session, "dump --locals")     # 0 ok, else an exit status
    status = d.run_words(session, ["bt", "--all"])    # a line already split
    status = d.run_argv(session, "dump", ["--pid", "42"])   # CLI: one subcommand
    d.names(session)               # command names usable on this session's source
    d.completions(session, "thr")  # candidates for the word being typed
    d.command_class("bt")          # the class behind a name or alias (None if unknown)

    # one call for a debugger command: output and errors go to ``out``
    status = dispatch.run_line(session, "dump --locals", out=stream)

    dispatch.unavailable(cls, session)  # None, or why not, in one line

Sessions: anything with the attributes of ``repl.session.Session`` that the
commands use (``out``, ``err``, ``source``, ``pid``, ``snapshot``,
``style()``, ``note()``, ``mark_exited()``, ``refresh()``...).  ``source``
(``LIVE``, ``CORE``, ``DEBUGGER``, ``SNAPSHOT_FILE``) is checked against each
command's capability flags (``repl.commands.base``): a command that cannot
work there says why in one line (``record`` on a core: "`record` samples a
running process over time; this session reads a core file") and returns 2.
While a command runs, ``session.dispatcher`` is the dispatcher that runs it,
so ``help`` and ``watch`` reach the command table without importing a
front end.

Errors are one line on ``session.err`` (plus ``hint:`` when the error has
one).  ``run_*`` return a status and never raise, except ``QuitRequested``
(the ``quit`` command: the front end ends the session).  On the CLI, an
unexpected exception propagates (a traceback for a bug report); elsewhere it
becomes one "internal error" line and the session goes on.
"""
from __future__ import annotations

import os

from snapshot.errors import ProcessExitedError, SnapshotError

from . import interrupts
from .commands import CLI_MODULES, load_all, load_cli
from .commands.base import (CORE, DEBUGGER, LIVE, SNAPSHOT_FILE, Command, CommandError,  # noqa: F401
                            HelpShown, QuitRequested)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, TextIO, Type


#: Front ends: which command table a dispatcher offers.
CLI = "cli"        # pyspy-repl SUBCOMMAND / pyspy-snapshot SUBCOMMAND
REPL = "repl"      # the prompt, scripts, gdb and lldb

#: Commands whose arguments are print paths: quotes are kept (p payload['key']).
PATH_WORDS = ("print", "p")


class Dispatcher:
    """Runs command lines for one front end (see the module docstring)."""

    def __init__(self, front: str = REPL, prog: str = "pyspy-repl"):
        if front not in (CLI, REPL):
            raise ValueError("unknown front end %r" % front)
        self.front = front
        self.prog = prog
        self._table: Optional[Dict[str, Type[Command]]] = None

    # -- the command table ---------------------------------------------------------
    @property
    def table(self) -> Dict[str, Type[Command]]:
        """Name or alias -> class, every command of this front end (imports them all)."""
        if self._table is None:
            if self.front == CLI:
                for name in CLI_MODULES:
                    load_cli(name)
                from .commands import CLI_COMMANDS
                self._table = CLI_COMMANDS
            else:
                self._table = load_all()
        return self._table

    def command_class(self, name: str) -> Optional[Type[Command]]:
        """The class behind ``name``; for the CLI this imports only that command's module."""
        if self.front == CLI and self._table is None:
            return load_cli(name)
        return self.table.get(name)

    def names(self, session=None) -> List[str]:
        """Primary command names, sorted; with a session, only those usable on its source."""
        source = getattr(session, "source", None) if session is not None else None
        return sorted({cls.name for cls in self.table.values() if cls.unavailable(source) is None})

    def completions(self, session, text: str) -> List[str]:
        """Candidates for the word being typed at the end of ``text`` (command names, flags, threads...)."""
        from .completion import candidates
        source = getattr(session, "source", None)
        usable = {name: cls for name, cls in self.table.items() if cls.unavailable(source) is None}
        return candidates(session, usable, text)

    # -- running -------------------------------------------------------------------
    def run_line(self, session, line: str, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
        """Split and run one command line ('' and comments do nothing)."""
        with _redirected(session, out, err):
            try:
                words = split_line(line)
            except CommandError as e:
                self.print_error(session, e)
                return 2
            if not words:
                return 0
            return self.run_words(session, words)

    def run_argv(self, session, name: str, argv: List[str]) -> int:
        """Run subcommand ``name`` with its arguments (the CLI's shape)."""
        return self.run_words(session, [name] + list(argv))

    def run_words(self, session, words: List[str]) -> int:
        """Run one command line, already split; returns its status.  Only QuitRequested escapes."""
        if not words:
            return 0
        name, argv = words[0], list(words[1:])
        cls = self.command_class(name)
        if cls is None:
            self.print_error(session, CommandError("unknown command %r (try `help`)" % name))
            return 2
        session.dispatcher = self
        cli = self.front == CLI
        try:
            why = unavailable(cls, session)
            if why:
                raise CommandError(why)
            command = cls()
            if cli:
                args = command.parse(argv, "%s %s" % (self.prog, cls.name))
                if not cls.one_shot:
                    from .startup import collect_again
                    collect_again()
            else:
                parser = command.parser(cls.name)
                if "--fresh" in argv and not any("--fresh" in a.option_strings for a in parser._actions):
                    argv.remove("--fresh")
                    session.refresh()
                if cls.needs_target and session.pid is None:
                    raise CommandError("not attached: `attach PID` first")
                args = parser.parse_args(argv)
            interrupts.check()
            status = command.run(session, args) or 0
            session.out.flush()
            interrupts.check()    # a Ctrl-C Python dropped meanwhile still counts
            return status
        except QuitRequested:
            raise
        except HelpShown:
            return 0
        except ProcessExitedError as e:
            first = session.mark_exited()
            self.print_error(session, e)
            if not cli and first and session.snapshot is not None:
                session.note("target process %d exited; the last snapshot is kept "
                             "(threads, bt, frame, locals still work)" % session.pid)
            return getattr(e, "exit_code", 1) or 1
        except (CommandError, SnapshotError) as e:
            self.print_error(session, e)
            return getattr(e, "exit_code", 1) or 1
        except KeyboardInterrupt:
            interrupts.acted()
            _flush(session.out)
            session.err.write("\ninterrupted\n" if not cli else "interrupted\n")
            return 130
        except BrokenPipeError:
            return 0 if cli else 1
        except Exception as e:  # noqa: BLE001 - one line, the session goes on
            if cli:
                raise
            self.print_error(session, CommandError("internal error in %s: %s: %s" % (cls.name, type(e).__name__, e)))
            if os.environ.get("PYSPY_REPL_DEBUG"):
                import traceback
                traceback.print_exc()
            return 1

    # -- errors --------------------------------------------------------------------------
    def print_error(self, session, error: BaseException) -> None:
        """One line (``prog: error: ...`` on the CLI, ``error: ...`` elsewhere), then the hint if any."""
        text = str(error).strip()
        text = text.splitlines()[0] if text else type(error).__name__
        err = session.err
        if self.front == CLI:
            err.write("%s: error: %s\n" % (self.prog, text))
        else:
            err.write(session.style("error:", "red", "bold") + " " + text + "\n")
        hint = getattr(error, "hint", "")
        if hint:
            err.write("  hint: %s\n" % hint)
        _flush(err)


def unavailable(cls: Type[Command], session) -> Optional[str]:
    """None when ``cls`` works on the session's source, else why not, in one line."""
    return cls.unavailable(getattr(session, "source", None))


def split_line(line: str) -> List[str]:
    """Words of a command line ('#' starts a comment); CommandError when the quoting is broken.

    Our own linear scanner (shlex grows each word a character at a time: a
    400 KB line took seconds).  ``#`` starts a comment at the start of a word,
    except ``#N`` (a thread or frame number: ``thread #3``).
    """
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return []
    first = stripped.split(None, 5)
    keep = first[0] in PATH_WORDS or (first[0] == "watch" and any(w in PATH_WORDS for w in first[1:5]))
    # print paths keep their quotes: p payload['key'] (the path parser reads the literal)
    words = _scan(stripped, keep_quotes=keep)
    if keep:
        return [_unquote(w) if w.startswith("-") or i == 0 else w for i, w in enumerate(words)]
    return words


def _scan(text: str, keep_quotes: bool) -> List[str]:
    words: List[str] = []
    parts: List[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            i += 1
            continue
        if c == "#" and not in_word and not (i + 1 < n and text[i + 1].isdigit()):
            break
        in_word = True
        if c in "'\"":
            end = i + 1
            while True:
                end = text.find(c, end)
                if end < 0:
                    raise CommandError("cannot parse %r: No closing quotation" % _cut(text))
                if c == '"' and not keep_quotes and _escaped(text, i + 1, end):
                    end += 1
                    continue
                break
            body = text[i + 1:end]
            if keep_quotes:
                parts.append(text[i:end + 1])
            elif c == '"':
                import re
                parts.append(re.sub(r'\\([\\"$`])', r"\1", body))
            else:
                parts.append(body)
            i = end + 1
            continue
        if c == "\\" and not keep_quotes:
            if i + 1 >= n:
                raise CommandError("cannot parse %r: No escaped character" % _cut(text))
            parts.append(text[i + 1])
            i += 2
            continue
        j = i + 1
        while j < n and not text[j].isspace() and text[j] not in "'\"" and (keep_quotes or text[j] != "\\"):
            j += 1
        parts.append(text[i:j])
        i = j
    if in_word:
        words.append("".join(parts))
    return words


def _escaped(text: str, start: int, quote_at: int) -> bool:
    """Whether the quote at ``quote_at`` is preceded by an odd number of backslashes (after ``start``)."""
    count = 0
    k = quote_at - 1
    while k >= start and text[k] == "\\":
        count += 1
        k -= 1
    return count % 2 == 1


def _cut(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def run_line(session, line: str, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Run one line with the session's dispatcher (a REPL one if it has none).

    The debugger entry point: with ``out`` and no ``err``, errors go to
    ``out`` too, so the caller gets the command's whole text in one stream.
    """
    dispatcher = getattr(session, "dispatcher", None) or Dispatcher(REPL)
    if out is not None and err is None:
        err = out
    return dispatcher.run_line(session, line, out=out, err=err)


class _redirected:
    """Point the session's out/err at other streams for one command."""

    def __init__(self, session, out: Optional[TextIO], err: Optional[TextIO]):
        self.session = session
        self.out = out
        self.err = err
        self.saved = None

    def __enter__(self):
        if self.out is not None or self.err is not None:
            self.saved = (self.session.out, self.session.err)
            if self.out is not None:
                self.session.out = self.out
            if self.err is not None:
                self.session.err = self.err
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            self.session.out, self.session.err = self.saved


def _flush(stream) -> None:
    try:
        stream.flush()
    except (OSError, ValueError):
        pass


def command_class(name: str, front: str = REPL) -> Optional[Type[Command]]:
    """The class a front end runs for ``name`` (tests, debugger help)."""
    return Dispatcher(front).command_class(name)


__all__ = ["CLI", "REPL", "LIVE", "CORE", "DEBUGGER", "SNAPSHOT_FILE", "Dispatcher", "command_class",
           "run_line", "split_line", "unavailable"]
