"""2.7 / 3.6 / 3.7 specifics that the end-to-end suites do not isolate.

* stripped 2.7/3.6 builds lose the ``interp_head`` symbol: it is recovered from the
  exported ``PyInterpreterState_Head`` with capstone, and must equal the ``.symtab`` value;
* 2.7's ``co_lnotab`` line increments are unsigned (3.6+ signed);
* a dump of a target whose libpython is a stripped copy finds the interpreter.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

import pythons
from snapshot import binary
from snapshot.walk.linetable import decode_lnotab, decode_lnotab_unsigned

PYENV = pythons.pyenv_root()


def _libpython(minor):
    libs = glob.glob(os.path.join(PYENV, "versions", minor + ".*", "lib", "libpython%s*.so.1.0" % minor))
    if not libs:
        pytest.skip("no pyenv %s with a shared libpython under %s" % (minor, PYENV))
    return sorted(libs)[-1]


@pytest.mark.parametrize("minor", ["2.7", "3.6"])
def test_interp_head_recovered_from_the_accessor(minor, tmp_path):
    lib = _libpython(minor)
    with_symbols = binary.analyse(lib)
    assert "interp_head" in with_symbols.symbols and "_PyRuntime" not in with_symbols.symbols
    strip = shutil.which("strip")
    if strip is None:
        pytest.skip("no strip(1) to make a stripped copy")
    stripped = str(tmp_path / os.path.basename(lib))
    subprocess.run([strip, "--strip-all", "-o", stripped, lib], check=True)
    info = binary.analyse(stripped)
    assert info.symbols.get("interp_head") == with_symbols.symbols["interp_head"]
    assert info.symbols.get("_PyThreadState_Current") == with_symbols.symbols["_PyThreadState_Current"]


def test_lnotab_line_increments_signed_only_from_36():
    table = bytes([4, 200, 6, 1])   # +4 bytes: +200 lines (2.7) or -56 lines (3.6+), then +6: +1
    unsigned = decode_lnotab_unsigned(table, 10)
    signed = decode_lnotab(table, 300)
    assert [unsigned.line_for(o) for o in (0, 4, 10)] == [10, 210, 211]
    assert [signed.line_for(o) for o in (0, 4, 10)] == [300, 244, 245]


@pytest.mark.parametrize("minor", ["2.7", "3.6"])
def test_dump_with_a_stripped_libpython(minor, tmp_path):
    lib = _libpython(minor)
    strip = shutil.which("strip")
    if strip is None:
        pytest.skip("no strip(1) to make a stripped copy")
    libdir = tmp_path / "lib"
    libdir.mkdir()
    subprocess.run([strip, "--strip-all", "-o", str(libdir / os.path.basename(lib)), lib], check=True)
    exe = pythons.find_pyenv(minor)
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir), XDG_CACHE_HOME=str(tmp_path / "cache"))
    t = pythons.Target(exe, "-c", workdir=str(tmp_path), env=env,
                       args=["import time\ndef waiting_here():\n    time.sleep(600)\nopen('ready', 'w').close()\n"
                             "waiting_here()\n"])
    try:
        t.wait_for_file(str(tmp_path / "ready"), 60)
        maps = open("/proc/%d/maps" % t.pid).read()
        assert str(libdir) in maps, "the target did not load the stripped copy"
        r = pythons.run_tool(["dump", "--pid", t.pid, "--json"],
                             env=dict(pythons.tool_env(), XDG_CACHE_HOME=str(tmp_path / "cache")))
        assert r.returncode == 0, r.stderr.decode()
        assert b"waiting_here" in r.stdout
    finally:
        t.stop()
