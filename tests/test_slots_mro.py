"""REPL ``print`` finds ``__slots__`` members and attributes along the whole MRO, on every interpreter."""
from __future__ import annotations

from pythons import Target, run_tool, target_script


def test_print_slots_and_mro(python, tmp_path):
    ready = str(tmp_path / "ready")
    target = Target(python.path, target_script("slots_target.py"), [ready], workdir=str(tmp_path))
    try:
        target.wait_for_file(ready, 60)
        commands = ["print obj.x", "print obj.base_val", "print obj.LIMIT", "print kls.LIMIT", "print obj.y"]
        args = ["--pid", target.pid]
        for c in commands:
            args += ["-c", c]
        result = run_tool(args, timeout=120)
    finally:
        target.stop()
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    lines = out.splitlines()
    for want in ("[1, 2]", "'from base'", "7"):
        assert want in lines, (want, out, err)
    assert lines.count("7") == 2, out
    # An unset slot has no value: the REPL says so, or falls back to the class's member descriptor.
    assert "y" in err or lines[-1].startswith("<member_descriptor object at"), (out, err)
