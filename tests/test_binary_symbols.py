"""``binary.analyse`` reads the interpreter's symbols with ``struct``; pyelftools is the oracle.

Why: the struct scan replaced pyelftools' name index (most of a cold attach), so
every interpreter binary of the matrix, and a stripped copy, must give exactly the
values pyelftools finds: the first entry of ``.dynsym``, then ``.symtab``, with a
non-zero value.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from snapshot import binary

_MAPS = "import sys; sys.stdout.write(open('/proc/self/maps').read())"


def _binaries(python) -> list:
    """The interpreter's executable and its libpython, as the running interpreter maps them."""
    out = subprocess.run([python.path, "-c", _MAPS], capture_output=True, text=True, timeout=60).stdout
    paths = []
    for line in out.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and "python" in os.path.basename(parts[5]):
            if parts[5] not in paths:
                paths.append(parts[5])
    assert paths, "no python binary in the maps of %s" % python.path
    return paths


def _oracle(path: str) -> dict:
    from elftools.elf.elffile import ELFFile
    found = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for name in (".dynsym", ".symtab"):
            section = elf.get_section_by_name(name)
            if section is None:
                continue
            for wanted in binary.SYMBOLS:
                if wanted in found:
                    continue
                symbols = section.get_symbol_by_name(wanted)
                if symbols and symbols[0]["st_value"]:
                    found[wanted] = symbols[0]["st_value"]
        sections = {n: elf.get_section_by_name(n) for n in (".PyRuntime",)}
        facts = {n: (s["sh_addr"], s["sh_size"]) for n, s in sections.items() if s is not None}
        facts["e_type"] = elf["e_type"]
    return found, facts


def _check(path: str) -> None:
    info = binary.analyse(path)
    symbols, facts = _oracle(path)
    recovered = {k: v for k, v in info.symbols.items() if k not in symbols}
    assert {k: v for k, v in info.symbols.items() if k in symbols} == symbols, path
    # only interp_head may be added (recovered from its accessor on stripped 2.7/3.6)
    assert set(recovered) <= {"interp_head"}, path
    assert info.elf_type == facts["e_type"], path
    if ".PyRuntime" in facts:
        assert info.pyruntime_section == facts[".PyRuntime"][0], path


def test_symbols_equal_pyelftools(python):
    for path in _binaries(python):
        _check(path)


def test_symbols_of_a_stripped_copy_equal_pyelftools(python, tmp_path):
    strip = shutil.which("strip")
    if strip is None:
        pytest.skip("no strip(1) to make a stripped copy")
    for path in _binaries(python):
        copy = str(tmp_path / os.path.basename(path))
        subprocess.run([strip, "--strip-all", "-o", copy, path], check=True)
        _check(copy)
