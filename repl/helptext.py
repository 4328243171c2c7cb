"""What ``pyspy-repl --help``, ``--version`` and ``completions`` print: built from the commands.

One table of subcommands (the CLI's command classes, plus the few handled
before dispatch: ``gdb-path``, ``lldb-path``, ``completions``), so the help
text, the shell completions and the dispatcher cannot disagree.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Tuple


#: Subcommands handled in ``repl.cli`` before dispatch, with their one-line help.
EXTRA = (("gdb-path", "Print the path of the gdb script (gdb -ex \"source $(pyspy-repl gdb-path)\")."),
         ("lldb-path", "Print the path of the lldb script (command script import $(pyspy-repl lldb-path))."),
         ("completions", "Print a shell completion script: completions bash|zsh|fish."))
SHELLS = ("bash", "zsh", "fish")


def version() -> str:
    try:
        from importlib.metadata import version as installed
        return installed("pyspy-repl")
    except Exception:  # noqa: BLE001 - running from a checkout
        import os
        import re
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml")
        try:
            with open(here, encoding="utf-8") as fh:
                found = re.search(r'^version\s*=\s*"([^"]+)"', fh.read(), re.M)
            return found.group(1) if found else "unknown"
        except OSError:
            return "unknown"


def subcommands() -> List[Tuple[str, str]]:
    """(name, first line of help) of every subcommand, in a stable order."""
    from .commands import CLI_MODULES, load_cli
    rows = []
    for name in CLI_MODULES:
        cls = load_cli(name)
        text = (getattr(cls, "help", "") or "").strip().split("\n\n")[0]
        text = " ".join(text.split())
        rows.append((name, text.split(". ")[0].rstrip(".") + "." if text else ""))
    return rows + list(EXTRA)


def subcommand_lines(prog: str) -> str:
    rows = subcommands()
    width = max(len(name) for name, _ in rows)
    body = "\n".join("  %-*s  %s" % (width, name, text) for name, text in rows)
    return "subcommands (%s SUBCOMMAND --help for each one's options):\n%s\n" % (prog, body)


def options_of(name: str) -> List[str]:
    """The option strings of CLI subcommand ``name`` (for completions)."""
    from .commands import load_cli
    cls = load_cli(name)
    if cls is None:
        return []
    import argparse
    parser = argparse.ArgumentParser(prog=name, add_help=True)
    try:
        cls().add_arguments(parser)
    except Exception:  # noqa: BLE001 - a command whose parser needs more: no options offered
        return ["--help"]
    return sorted({opt for action in parser._actions for opt in action.option_strings if opt.startswith("--")})


def completion_script(shell: str, prog: str = "pyspy-repl") -> str:
    """A completion script for ``shell``: subcommands, then each subcommand's long options."""
    names = [name for name, _ in subcommands()]
    options: Dict[str, List[str]] = {name: options_of(name) for name in names}
    options["completions"] = list(SHELLS)
    top = ["--pid", "--core", "--no-color", "--help", "--version", "-c"]
    func = "_" + prog.replace("-", "_")
    if shell == "bash":
        cases = "".join('        %s) opts="%s" ;;\n' % (n, " ".join(o)) for n, o in options.items())
        return ("%(func)s() {\n"
                "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" sub=\"${COMP_WORDS[1]}\" opts\n"
                "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
                "        COMPREPLY=($(compgen -W \"%(names)s %(top)s\" -- \"$cur\")); return\n"
                "    fi\n"
                "    case \"$sub\" in\n%(cases)s"
                "        *) opts=\"%(top)s\" ;;\n"
                "    esac\n"
                "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
                "}\n"
                "complete -o default -F %(func)s %(prog)s\n"
                % {"func": func, "names": " ".join(names), "top": " ".join(top), "cases": cases, "prog": prog})
    if shell == "zsh":
        cases = "".join("        (%s) compadd -- %s ;;\n" % (n, " ".join(o)) for n, o in options.items())
        return ("#compdef %(prog)s\n"
                "%(func)s() {\n"
                "    if (( CURRENT == 2 )); then\n"
                "        compadd -- %(names)s %(top)s; return\n"
                "    fi\n"
                "    case ${words[2]} in\n%(cases)s"
                "        (*) _files ;;\n"
                "    esac\n"
                "}\n"
                "compdef %(func)s %(prog)s\n"
                % {"func": func, "names": " ".join(names), "top": " ".join(top), "cases": cases, "prog": prog})
    if shell == "fish":
        helps = dict(subcommands())
        lines = ["complete -c %s -f" % prog]
        for name in names:
            lines.append("complete -c %s -n '__fish_use_subcommand' -a %s -d '%s'"
                         % (prog, name, helps.get(name, "").replace("'", "\\'")[:60]))
            for opt in options[name]:
                if opt.startswith("--"):
                    lines.append("complete -c %s -n '__fish_seen_subcommand_from %s' -l %s"
                                 % (prog, name, opt[2:]))
                else:
                    lines.append("complete -c %s -n '__fish_seen_subcommand_from %s' -a %s" % (prog, name, opt))
        return "\n".join(lines) + "\n"
    raise ValueError("unknown shell %r (one of %s)" % (shell, ", ".join(SHELLS)))
