"""Run one `pyspy-repl dump --pid PID` in this process and split its CPU into phases.

    python bench/_dump_phases.py PID [dump options...]

Prints one JSON line on stderr: CPU seconds (user+sys of this process) spent
in interpreter start-up (everything before this file's first line, ``site``
included), in imports (outermost ``import`` statements, wherever they run), in
``attach()`` (discovery, per-binary facts; imports it triggers are counted as
imports), in ``Target.snapshot()`` + rendering ("walk + names"), and the total.
The dump's own output goes to stdout as usual.

Imports are timed by wrapping ``importlib._bootstrap._find_and_load``, which the
import statement calls for every module not yet in ``sys.modules``.
"""
import time

_T0 = time.process_time()  # start-up: interpreter + site, before our first line

import importlib._bootstrap as _bootstrap  # noqa: E402  (already loaded by the interpreter)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

_real_find_and_load = _bootstrap._find_and_load
_depth = [0]
_import_cpu = [0.0]


def _timed_find_and_load(name, import_):
    if _depth[0]:
        return _real_find_and_load(name, import_)
    _depth[0] += 1
    t = time.process_time()
    try:
        return _real_find_and_load(name, import_)
    finally:
        _import_cpu[0] += time.process_time() - t
        _depth[0] -= 1


_bootstrap._find_and_load = _timed_find_and_load
_preloaded_cpu = time.process_time() - _T0  # json/os were loaded by start-up already: ~0


def main() -> int:
    pid, extra = sys.argv[1], sys.argv[2:]
    # pyspy-repl comes from PYTHONPATH (the bench sets it to the tree measured)
    phase = {"attach": 0.0, "walk": 0.0}

    def timed(key, fn):
        def wrapper(*a, **k):
            t, imp = time.process_time(), _import_cpu[0]
            try:
                return fn(*a, **k)
            finally:
                phase[key] += (time.process_time() - t) - (_import_cpu[0] - imp)
        return wrapper

    # start-up as the console script has it (repl.cli._run_console): collection held, the
    # start-up cache's data-class methods and module finder in place
    from repl.startup import hold_collection, use_code_cache
    hold_collection()
    use_code_cache()
    import repl.cli as cli
    import repl.session as session_mod
    session_mod.attach = timed("attach", session_mod.attach)
    real_take = session_mod.Session.take_snapshot
    session_mod.Session.take_snapshot = timed("walk", real_take)
    import repl.commands.dump as dump_mod
    dump_mod.render_snapshot = timed("walk", dump_mod.render_snapshot)
    # attach() inside take_snapshot is counted in both: take it back out of walk
    code = cli.main(["dump", "--pid", pid] + extra, interactive=False)
    sys.stdout.flush()
    total = time.process_time()
    out = {"startup": _T0, "imports": _import_cpu[0], "attach": phase["attach"],
           "walk": phase["walk"] - phase["attach"], "total": total}
    out["other"] = total - sum(out[k] for k in ("startup", "imports", "attach", "walk"))
    sys.stderr.write("PHASES " + json.dumps(out) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
