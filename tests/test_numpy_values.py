"""numpy scalars and arrays in ``dump --locals``, on every interpreter a numpy wheel exists for.

numpy is installed by the test set-up with pip into a per-interpreter
directory (~/.cache/pyspy-repl/numpy-<python version>, put on the target's
PYTHONPATH); no wheel for that interpreter, or no network: skipped, with the
reason.  Scalars must print exactly as the target's own ``repr`` (numpy 2:
``np.int8(2)``; numpy 1: ``2``); arrays as ``array(shape=..., dtype=...)``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pythons import Target, run_tool, target_script

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "pyspy-repl")


def numpy_dir(python) -> str:
    """numpy for this interpreter, installed once (pip --target); skips with pip's reason."""
    path = os.path.join(CACHE, "numpy-%s" % python.version)
    if os.path.isdir(os.path.join(path, "numpy")):
        return path
    tmp = path + ".tmp"
    # --python-version picks wheels tagged for the target; pip would still check Requires-Python
    # against the interpreter running pip, hence --ignore-requires-python (the tags decide).
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             "--target", tmp, "--python-version", python.minor, "--only-binary=:all:",
                             "--no-deps", "--ignore-requires-python", "numpy"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        subprocess.run(["rm", "-rf", tmp])
        reason = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        pytest.skip("no numpy wheel for %s: %s" % (python.id, reason))
    os.replace(tmp, path)
    return path


def test_numpy_values_exact(python, tmp_path):
    site = numpy_dir(python)
    truth_path = str(tmp_path / "truth.json")
    env = dict(os.environ, PYTHONPATH=site)
    target = Target(python.path, target_script("numpy_target.py"), [truth_path], workdir=str(tmp_path), env=env)
    try:
        try:
            truth = target.wait_truth(truth_path, 120)
        except AssertionError as e:
            if "ImportError" in str(e) or "ModuleNotFoundError" in str(e):
                pytest.skip("numpy does not import on %s: %s" % (python.id, str(e).splitlines()[-1]))
            raise
        result = run_tool(["dump", "--locals", "--json", "--pid", target.pid], timeout=120)
    finally:
        target.stop()
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    frames = [f for t in json.loads(result.stdout.decode("utf-8")) for f in t["frames"] if f["name"] == "holder"]
    assert frames, "holder frame not found"
    got = {local["name"]: local["repr"] for local in frames[0]["locals"]}
    problems = ["%s: %r != %r" % (name, got.get(name), want) for name, want in truth["reprs"].items()
                if got.get(name) != want]
    assert not problems, "numpy %s on %s:\n%s" % (truth["version"], python.id, "\n".join(problems))
