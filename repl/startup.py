"""The compiled methods of our data classes, kept between runs.

Why: ``layouts.records`` generates each data class's methods as source and compiles it;
some thirty classes are declared before a one-shot ``dump`` reads a byte, and compiling them
was milliseconds of every start.  Their code objects are stored with ``marshal`` under
``$XDG_CACHE_HOME/pyspy-repl/records/`` (one file per interpreter build: code objects are
only valid for the Python that made them) and given to ``records.CODE`` before any class is
declared; a run that compiled something new writes the file again when it exits.

A cache file is code we run, so it is used only when this user owns it and nobody else
can write it; anything wrong with it (missing, damaged, foreign) only means compiling as
before, silently: it costs time, never output.
"""
from __future__ import annotations

import marshal
import os
import sys

#: Entries kept at most: past it (sources changed many times) the file keeps this run's only.
MAX_ENTRIES = 400


def cache_path() -> str:
    # the base as snapshot.binary.cache_dir has it; not imported from there: importing the
    # snapshot package declares the data classes this file is to give their code first
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    # the build's identity: the version string names the release, compiler and build date
    tag = "%s-%08x" % (sys.implementation.cache_tag, hash_text(sys.version))
    return os.path.join(base, "pyspy-repl", "records", tag + ".marshal")


def hash_text(text: str) -> int:
    """A stable 32-bit hash (``hash()`` of a str changes per process)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


#: True from ``hold_collection`` until ``collect_again``: only one-shot work has run.
_one_shot_only = False


def hold_collection() -> None:
    """No cyclic garbage collection during start-up: importing allocates tens of thousands
    of objects and no cycle worth a pass, and the passes it triggered were ~4% of a one-shot
    dump's CPU.  ``collect_again`` turns it back on for a command that runs for long."""
    global _one_shot_only
    import gc
    gc.disable()
    _one_shot_only = True


def collect_again() -> None:
    """Cyclic collection on again (a long run: record, top, watch, the prompt), with what
    start-up made frozen out of every later pass (``gc.freeze``)."""
    global _one_shot_only
    import gc
    _one_shot_only = False
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def finish(code: int) -> None:
    """End the console script with ``code``.

    Why not always ``sys.exit``: after a one-shot command (``dump``, ``save``) the
    interpreter's own teardown (every module's dictionary, every object freed one by one)
    was ~8% of the run's instructions and a tenth of its CPU, for nothing anyone sees.  So
    when only one-shot work ran and no other thread is alive, the standard streams are
    flushed, the ``atexit`` functions run (the code cache above is saved by one) and the
    process ends with ``os._exit``.  Everything a command writes is closed by the command
    itself (``save`` replaces its file before it returns), so nothing is left unwritten.
    Anything else (a long command, the prompt, a live thread) exits the normal way.
    """
    threading = sys.modules.get("threading")
    if not _one_shot_only or (threading is not None and threading.active_count() > 1):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    import atexit
    atexit._run_exitfuncs()
    os._exit(code)


def use_code_cache() -> None:
    """Fill ``records.CODE`` from the cache and save what this run adds at exit."""
    from layouts import records
    path = cache_path()
    loaded = _load(path)
    if loaded:
        records.CODE.update(loaded)
    import atexit
    atexit.register(_save, path, records)


def _load(path: str) -> dict:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return {}       # not ours alone: never run code someone else could have written
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items()
            if isinstance(k, tuple) and len(k) == 2 and type(v).__name__ == "code"}


def _save(path: str, records) -> None:
    if not records.COMPILED:
        return
    # Least recently used first, then what this run used and compiled; the newest MAX_ENTRIES
    # are kept (two installs, or a clone beside an install, take turns without evicting each other).
    recent = dict.fromkeys(records.USED + records.COMPILED)
    order = [key for key in records.CODE if key not in recent] + list(recent)
    keep = {key: records.CODE[key] for key in order[-MAX_ENTRIES:]}
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(marshal.dumps(keep))
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
