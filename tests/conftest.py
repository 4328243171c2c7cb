"""Test-session plumbing: the interpreter matrix and the ``python`` fixture.

The matrix (tests/pythons.py) is discovered once per session; the Debian sid
interpreters come from tests/tools/get-pythons.sh, run once per session unless
PYSPY_REPL_NO_FETCH=1.  Tests that take the ``python`` fixture run once per
matrix entry (ids like ``3.12-pyenv``, ``3.11-debian``, ``3.14-sid``); an entry
that is not available is skipped with the reason, never dropped.
"""
from __future__ import annotations

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pythons  # noqa: E402

# A suite started in the background by a non-interactive shell (`cmd &` in a CI script) inherits
# SIGINT ignored, and so would every tool and target it starts: the tests of what Ctrl-C does
# would then wait for an interrupt that cannot arrive.  A Python handler here is reset to the
# default in every child at exec, as it is for a suite started from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_MATRIX = None
_FETCH = None


def matrix():
    """The matrix, discovered (and the sid interpreters fetched) on first use."""
    global _MATRIX, _FETCH
    if _MATRIX is None:
        _FETCH = pythons.fetch_sid()
        _MATRIX = pythons.discover(_FETCH)
    return _MATRIX


def pytest_report_header(config):
    m = matrix()
    lines = ["pyspy-repl interpreter matrix (%d of %d available):" % (
        sum(i.available for i in m), len(m))]
    lines += ["  " + i.describe() for i in m]
    if _FETCH is not None and _FETCH.problem:
        lines.append("  get-pythons: " + _FETCH.problem)
    return lines


def pytest_generate_tests(metafunc):
    if "python" in metafunc.fixturenames:
        m = matrix()
        metafunc.parametrize("python", m, ids=[i.id for i in m], indirect=True, scope="module")


@pytest.fixture(scope="module")
def python(request):
    """One matrix entry (pythons.Interpreter); skips with the reason when it is missing."""
    interp = request.param
    if not interp.available:
        pytest.skip("%s not available: %s" % (interp.id, interp.missing))
    module = os.path.basename(str(request.node.fspath))
    if interp.legacy and module not in pythons.LEGACY_READY:
        pytest.skip("%s: %s has not been ported to the 2.7/3.6/3.7 targets yet (tests/pythons.py LEGACY_READY)"
                    % (interp.id, module))
    return interp


@pytest.fixture(scope="session")
def once_python():
    """The interpreter for checks that run once, not per version (console scripts, 200 dumps,
    pause safety, error paths): PYSPY_REPL_ONCE_ON (default 3.12-pyenv), else the first available."""
    available = [i for i in matrix() if i.available]
    if not available:
        pytest.skip("no interpreter of the matrix is available: %s" % "; ".join(
            "%s: %s" % (i.id, i.missing) for i in matrix()))
    for i in available:
        if i.id == pythons.CONSOLE_SCRIPT_INTERPRETER:
            return i
    return available[0]
