"""Discoverability: --help lists every subcommand with a line, --version, shell completions."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pythons import run_tool

SUBCOMMANDS = ("dump", "record", "top", "watch", "gdb-path", "lldb-path", "completions")


def _out(proc):
    return proc.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize("prog", [None, "snapshot"])
def test_help_lists_every_subcommand_with_a_line(prog):
    cmd = ["--help"]
    prefix = None
    if prog == "snapshot":
        import sys
        prefix = [sys.executable, "-c", "import sys; from repl.cli import snapshot_main; sys.exit(snapshot_main())"]
    proc = run_tool(cmd, prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    text = _out(proc)
    for name in SUBCOMMANDS:
        line = next((l for l in text.splitlines() if l.strip().startswith(name + " ")), None)
        assert line and len(line.split(None, 1)[1]) > 10, (name, text)
    if prog == "snapshot":
        # pyspy-snapshot has no prompt: it must not advertise the prompt's --pid form
        assert "interactive prompt" not in text and "--pid PID |" not in text, text


def test_version():
    proc = run_tool(["--version"])
    assert proc.returncode == 0
    name, version = _out(proc).split()
    assert name == "pyspy-repl" and version[0].isdigit()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions(shell):
    proc = run_tool(["completions", shell])
    assert proc.returncode == 0, proc.stderr
    script = _out(proc)
    for name in ("dump", "record", "top", "watch", "gdb-path"):
        assert name in script
    if shell == "fish":
        assert "-l subprocesses" in script and "-l nonblocking" in script
    else:
        assert "--subprocesses" in script and "--nonblocking" in script
    checker = shutil.which(shell)
    if checker is None:
        pytest.skip("%s not installed: script not syntax-checked" % shell)
    flag = ["--no-execute"] if shell == "fish" else ["-n"]
    check = subprocess.run([checker] + flag, input=script.encode(), capture_output=True)
    assert check.returncode == 0, check.stderr


def test_completions_bash_completes_subcommands_and_options():
    bash = shutil.which("bash")
    script = _out(run_tool(["completions", "bash"]))
    probe = script + '\nCOMP_WORDS=(pyspy-repl rec); COMP_CWORD=1; _pyspy_repl; echo "${COMPREPLY[@]}"\n' \
                     'COMP_WORDS=(pyspy-repl record --sub); COMP_CWORD=2; _pyspy_repl; echo "${COMPREPLY[@]}"\n'
    out = subprocess.run([bash, "-c", probe], capture_output=True).stdout.decode().splitlines()
    assert out == ["record", "--subprocesses"], out


def test_bad_shell_is_a_usage_error():
    proc = run_tool(["completions", "tcsh"])
    assert proc.returncode == 2 and b"bash,zsh,fish" in proc.stderr
