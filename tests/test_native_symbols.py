"""Symbol tables: struct parsing against readelf, debug files by build-id (mismatches rejected),
.gnu_debuglink, nearest-only lookups, and C++ demangling through c++filt."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from snapshot.native import symbols
from snapshot.native.elf import ElfFile

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
PY311 = "/usr/bin/python3.11"


def need(path):
    if not os.path.exists(path):
        pytest.skip("%s not on this machine" % path)
    return ElfFile(path)


def test_dynsym_matches_readelf():
    elf = need(PY311)
    table = symbols.load_symbols(elf, elf.build_id(), use_cache=False)
    out = subprocess.run(["readelf", "-sW", "--dyn-syms", PY311], capture_output=True, text=True).stdout
    funcs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FUNC" and parts[6] != "UND":
            funcs[parts[7].split("@")[0]] = (int(parts[1], 16), int(parts[2], 0))
    assert len(funcs) > 1000
    for name, (value, size) in list(funcs.items())[::50]:
        assert table.address_of(name) == (value, size) or name in table.aliases(value), name
        found, offset, exact = table.lookup(value + max(0, size - 1))
        assert exact and offset == max(0, size - 1) and (found == name or name in table.aliases(value))


def test_lookup_nearest_and_exact():
    table = symbols.SymbolTable([0x100, 0x200, 0x300], [0x10, 0, 0x80], ["a", "b", "c"])
    assert table.lookup(0x105) == ("a", 5, True)
    assert table.lookup(0x150) == ("a", 0x50, False)      # past a's end: only the nearest
    assert table.lookup(0x210) == ("b", 0x10, False)      # unsized: never claimed exact
    assert table.lookup(0x37F) == ("c", 0x7F, True)
    assert table.lookup(0x50) == (None, 0, False)


def test_debug_file_by_build_id():
    elf = need(LIBC)
    build_id = elf.build_id()
    path = symbols.debug_file_for(elf, build_id)
    if path is None:
        pytest.skip("libc6-dbg not installed")
    assert path.endswith("/%s/%s.debug" % (build_id[:2], build_id[2:]))
    table = symbols.load_symbols(elf, build_id, use_cache=False)
    assert path in table.sources and table.address_of("__futex_abstimed_wait_common") is not None


def test_mismatched_debug_file_is_rejected(tmp_path):
    elf = need(LIBC)
    real = symbols.debug_file_for(elf, elf.build_id())
    if real is None:
        pytest.skip("libc6-dbg not installed")
    fake_id = "ab" + "0" * 38
    place = tmp_path / ".build-id" / "ab"
    place.mkdir(parents=True)
    shutil.copy(real, place / (fake_id[2:] + ".debug"))
    # the file is there under the fake build-id, but its own build-id differs: not used
    assert symbols.debug_file_for(elf, fake_id, roots=(str(tmp_path),)) is None
    assert symbols.debug_file_for(elf, elf.build_id(), roots=(str(tmp_path),)) in (None, real)


def test_gnu_debuglink_is_followed_and_checked(tmp_path):
    """A file whose .gnu_debuglink names a debug file beside it, by build-id check."""
    if shutil.which("gcc") is None or shutil.which("objcopy") is None:
        pytest.skip("gcc/objcopy not on PATH")
    src = tmp_path / "f.c"
    src.write_text("static int hidden(int x) { return x * 3; }\nint visible(int x) { return hidden(x) + 1; }\n")
    lib = tmp_path / "libf.so"
    subprocess.run(["gcc", "-O0", "-g", "-shared", "-fPIC", "-Wl,--build-id", "-o", str(lib), str(src)], check=True)
    debug = tmp_path / "libf.so.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-all", "--add-gnu-debuglink=" + str(debug), str(lib)], check=True,
                   cwd=str(tmp_path))
    elf = ElfFile(str(lib))
    assert elf.debuglink()[0] == "libf.so.debug"
    assert symbols.debug_file_for(elf, elf.build_id(), roots=()) == str(debug)
    table = symbols.load_symbols(elf, elf.build_id(), use_cache=False)
    assert table.address_of("hidden") is not None          # a static function: only in the debug file
    assert symbols.debug_file_for(elf, "00" * 20, roots=()) is None   # build-id must match


def test_demangling(monkeypatch):
    names = ["_ZN3foo3barEv", "plain", "_ZNSt6vectorIiSaIiEE9push_backERKi"]
    if shutil.which("c++filt") is None:
        assert symbols.demangle(names) == names
        pytest.skip("c++filt not on PATH: names stay mangled")
    assert symbols.demangle(names) == ["foo::bar()", "plain",
                                       "std::vector<int, std::allocator<int> >::push_back(int const&)"]
    monkeypatch.setattr(shutil, "which", lambda name: None)   # the module demangle imports when asked
    assert symbols.demangle(names) == names


# --------------------------------------------------------------------------
# PLT stubs: foo@plt, as gdb names them
# --------------------------------------------------------------------------
def _gdb_info_symbol(path, addresses):
    """gdb's ``info symbol`` for each file address, one answer per address."""
    commands = []
    for address in addresses:
        commands += ["-ex", "echo @@\\n", "-ex", "info symbol 0x%x" % address]
    out = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set auto-load off"] + commands + [path],
                         capture_output=True, text=True, timeout=120).stdout
    answers = [part.strip() for part in out.split("@@\n")[1:]]
    assert len(answers) == len(addresses), out[-2000:]
    return answers


def _ibt_library(tmp_path, lazy):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not on PATH: no library with .plt.sec can be built")
    source = tmp_path / "ibt.c"
    source.write_text("#include <stdlib.h>\n#include <string.h>\n"
                      "void *f(size_t n) { void *p = malloc(n); memset(p, 0, n); return p; }\n"
                      "void g(void *p) { free(p); }\n")
    out = str(tmp_path / ("ibt_lazy.so" if lazy else "ibt_now.so"))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-fcf-protection=full", "-Wl,-z,ibtplt", "-o", out,
                    str(source)] + ([] if lazy else ["-Wl,-z,now"]), check=True, capture_output=True)
    return out


@pytest.mark.parametrize("which", ["libc", "libpython3.12", "python3.12", "python3.11-debian", "ibt-lazy",
                                   "ibt-now"])
def test_plt_stubs_are_named_like_gdb(which, tmp_path):
    """Every sampled PLT entry of a real binary of this machine (.plt, .plt.got; .plt.sec in a
    gcc-built IBT library) is ``foo@plt`` covering the whole entry, and gdb's ``info symbol`` says
    the same at the entry's first and last byte; where gdb names nothing (PLT0, the lazy stubs of
    an IBT .plt), we claim no exact symbol either."""
    if shutil.which("gdb") is None:
        pytest.skip("gdb not on PATH: no oracle for PLT names")
    path = {"libc": LIBC, "python3.11-debian": PY311,
            "libpython3.12": os.path.expanduser("~/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"),
            "python3.12": os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3.12")}.get(which)
    if which.startswith("ibt"):
        path = _ibt_library(tmp_path, lazy=which == "ibt-lazy")
    elf = need(path)
    table = symbols.load_symbols(elf, elf.build_id(), use_cache=False)
    plt = [(start, size, name) for start, size, name in zip(table.starts, table.sizes, table.names)
           if name.endswith("@plt")]
    sections = {s.name: s for s in elf.section_list if s.name in (".plt", ".plt.sec", ".plt.got")}
    assert plt, "no PLT entry named in %s" % path
    if which.startswith("ibt"):
        assert ".plt.sec" in sections
        sec = sections[".plt.sec"]
        assert any(sec.addr <= start < sec.addr + sec.size for start, _, _ in plt)
    sample = plt[::max(1, len(plt) // 30)] + plt[-1:]
    addresses = []
    for start, size, _ in sample:
        addresses += [start, start + size - 1]
    # addresses in PLT sections that hold no named entry: PLT0, lazy IBT stubs
    named = {start for start, _, _ in plt}
    unnamed = []
    for sec in sections.values():
        step = sec.entsize if sec.entsize in (8, 16) else 16
        unnamed += [a for a in range(sec.addr, sec.addr + sec.size, step) if a not in named][:3]
    answers = _gdb_info_symbol(path, addresses + unnamed)
    for (start, size, name), first, last in zip(sample, answers[0::2], answers[1::2]):
        assert table.lookup(start) == (name, 0, True)
        assert table.lookup(start + size - 1) == (name, size - 1, True)
        assert first.startswith("%s in section .plt" % name), (hex(start), name, first)
        assert last.startswith("%s + %d in section .plt" % (name, size - 1)), (hex(start), name, last)
    for address, answer in zip(unnamed, answers[2 * len(sample):]):
        assert answer.startswith("No symbol matches"), (hex(address), answer)
        name, _, exact = table.lookup(address)
        assert not exact, (hex(address), name)
