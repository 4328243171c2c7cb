"""The one-shot commands' quick parser gives argparse's values, or leaves the words to argparse.

Every CLI command's own declarations are parsed both ways over the plain forms (long and
short, ``=`` and attached values, repeated and appended options); every other form must
raise ``NotQuick`` (so argparse parses it: help, errors, abbreviations, negative values),
and ``Command.parse`` must then give exactly argparse's result or error.
"""
from __future__ import annotations


import pytest

from pythons import modules_loaded_after
from repl.commands import CLI_MODULES, load_cli
from repl.commands.base import CommandError, HelpShown
from repl.commands.quickparse import Namespace, NotQuick, QuickParser


PLAIN = [
    [],
    ["--pid", "123"],
    ["--pid=123"],
    ["-p", "123"],
    ["-p123"],
    ["--pid", "1", "--pid", "2"],
    ["--pid", "7", "--locals", "--json"],
    ["-p", "7", "-l", "-j", "--max-repr", "80", "--full-filenames"],
    ["--pid", "7", "--native", "--debug-dir", "/a", "--debug-dir=/b"],
    ["--pid", "7", "-n", "--nonblocking", "--native-all"],
    ["--core", "core.1", "--executable", "/usr/bin/python3", "--lib-search-path", "/x:/y", "--lib-search-path", "/z"],
    ["--load", "snap.json"],
    ["--pid", ""],
    ["--pid", "7", "--async", "--subprocesses"],
    ["--pid", "5", "-d", "1", "-o", "out.txt", "-f", "raw", "--rate", "250", "--idle", "--gil"],
    ["-p5", "--duration=2.5", "--format=speedscope", "--threads", "--nolineno"],
    ["--pid", "5", "--delay", "0.5", "--rows", "10"],
    ["--timeout", "3", "--samples", "2", "--kill-after", "0", "--json", "r.json"],
    ["--pid", "5", "--rate", "nan"],
]

LEFT_TO_ARGPARSE = [
    ["--help"],
    ["-h"],
    ["--pi", "7"],                 # an abbreviation
    ["--pid", "-7"],               # a value argparse may read as an option or a number
    ["--pid"],                     # a missing value
    ["--pid", "seven"],            # a failed conversion
    ["-lj", "--pid", "7"],         # combined short flags
    ["--locals=yes"],              # a value given to a flag
    ["7"],                         # a positional
    ["--", "--pid", "7"],
    ["--nosuch"],
    ["-x"],
    ["--pid", "5", "--", "python", "x.py"],  # words for a command
    ["--pid", "5", "-f", "nosuchformat"],
]


def _commands():
    return [load_cli(name) for name in sorted(CLI_MODULES)]


def _argparse(cls, words):
    try:
        return "ok", vars(cls().parser("prog").parse_args(list(words)))
    except CommandError as e:
        return "error", str(e)
    except HelpShown:
        return "help", None


@pytest.mark.parametrize("words", PLAIN, ids=" ".join)
def test_plain_forms_match_argparse(words):
    compared = accepted = 0
    for cls in _commands():
        expected = _argparse(cls, words)
        accepted += expected[0] == "ok"
        quick = QuickParser()
        try:
            cls().add_arguments(quick)
            got = ("ok", vars(quick.parse_args(words)))
        except NotQuick:
            got = None
        if got is not None:
            assert got == expected, cls.name
            compared += 1
        command = cls()
        try:
            via_parse = ("ok", vars(command.parse(list(words), "prog")))
        except CommandError as e:
            via_parse = ("error", str(e))
        assert via_parse == expected, cls.name
    if accepted:
        assert compared >= 1      # what argparse accepts, one command at least parses without it


@pytest.mark.parametrize("words", LEFT_TO_ARGPARSE, ids=" ".join)
def test_other_forms_are_left_to_argparse(words):
    dump = load_cli("dump")
    quick = QuickParser()
    dump().add_arguments(quick)
    with pytest.raises(NotQuick):
        quick.parse_args(words)
    for cls in _commands():
        expected = _argparse(cls, words)
        try:
            got = ("ok", vars(cls().parse(list(words), "prog")))
        except CommandError as e:
            got = ("error", str(e))
        except HelpShown:
            got = ("help", None)
        assert got == expected, cls.name


def test_declarations_it_does_not_know_are_refused():
    parser = QuickParser()
    for flags, spec in ((("name",), {}), (("--x",), {"nargs": "+"}), (("--x",), {"action": "count"}),
                        (("--x",), {"type": int, "default": "3"}), (("--x",), {"const": 1})):
        with pytest.raises(NotQuick):
            parser.add_argument(*flags, **spec)
    with pytest.raises(NotQuick):
        parser.set_defaults(x=1)
    with pytest.raises(NotQuick):
        parser.add_mutually_exclusive_group(required=True)


def test_exclusive_group_and_choices_go_to_argparse():
    parser = QuickParser()
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--a", action="store_true")
    group.add_argument("--b", action="store_true")
    parser.add_argument("--fmt", choices=("x", "y"))
    assert vars(parser.parse_args(["--a", "--fmt", "y"])) == {"a": True, "b": False, "fmt": "y"}
    for words in (["--a", "--b"], ["--fmt", "z"]):
        with pytest.raises(NotQuick):
            parser.parse_args(words)


def test_namespace_reads_like_argparses():
    import argparse
    ours, theirs = Namespace(pid=3, json=False), argparse.Namespace(pid=3, json=False)
    assert repr(ours) == repr(theirs) and ("pid" in ours) and ("nope" not in ours) and ours == theirs


def test_a_text_dump_leaves_argparse_out():
    """Parsing ``dump --pid N`` imports none of argparse, re, gettext, locale."""
    code = ("from repl.commands import load_cli\n"
            "args = load_cli('dump')().parse(['--pid', '5', '--locals'], 'pyspy-repl dump')\n"
            "assert args.pid == 5 and args.locals")
    assert modules_loaded_after(code, ("argparse", "gettext", "locale")) == []
