"""README's two commands and .ci/run agree, and both work where python3 is externally managed (PEP 668)."""
from __future__ import annotations

import os
import re

from pythons import REPO


def _readme_commands():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_exactly_readmes_test_command():
    demo, tests = _readme_commands()[:2]
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as fh:
        lines = [l.strip() for l in fh if l.strip() and not l.startswith("#")]
    assert lines[-1] == tests, (lines[-1], tests)
    assert "pytest" in tests and "examples/demo.py" in demo


def test_readme_commands_do_not_install_into_the_system_interpreter():
    """Debian's python3 refuses ``pip install`` outside a venv (PEP 668): each command makes its own."""
    for command in _readme_commands():
        steps = [step.strip() for step in command.split("&&")]
        if steps[0].startswith("python3 -m venv "):
            steps = steps[1:]
        for step in steps:
            assert step.startswith(".venv/bin/"), (step, command)
    assert _readme_commands()[0].startswith("python3 -m venv .venv && ")
