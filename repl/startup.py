"""What start-up keeps between runs, and how a one-shot run ends.

Code kept between runs, in one file per interpreter build (code objects are valid only for
the Python that made them), ``$XDG_CACHE_HOME/pyspy-repl/startup/<tag>.marshal``:

* **the compiled methods of our data classes.**  ``layouts.records`` generates each data
  class's methods as source and compiles it; some thirty classes are declared before a
  one-shot ``dump`` reads a byte, and compiling them was milliseconds of every start.  They
  are given to ``records.CODE`` before any class is declared.
* **our own modules' code.**  Python finds, checks and reads each module on its own (a
  directory listing, a ``stat`` of the source, the byte-code file opened, checked and read);
  for the sixty modules a dump imports that was a tenth of its CPU, mostly system time.  A
  finder ahead of Python's own (``_CachedModules``) serves them from this one file while each
  source file still has the size and modification time it had when its code was stored (the
  check Python's own byte-code files rely on), and steps aside for anything else.

One file per interpreter build and installation folder (``<tag>-<folder hash>.marshal``): two
checkouts or installs never serve each other's code, and a run reads only its own folder's
code.  (One file for every folder was read whole by every run: with four folders kept, 5 MB,
about 4 ms of each one-shot dump.)  At most ``MAX_ROOTS`` folders' files are kept per build;
writing one removes the build's least recently written beyond that.

Each entry is marshalled on its own, so a run unmarshals only what it uses.  A run that
compiled a class or imported one of our modules the usual way writes the file again when it
exits (``PYTHONDONTWRITEBYTECODE`` does not stop it: it is about ``__pycache__`` folders beside
the sources, and this is a cache folder, as the binary cache is).

A cache file is code we run, so it is used only when this user owns it and nobody else can
write it; anything wrong with it (missing, damaged, foreign) only means compiling and
importing as before, silently: it costs time, never output.
"""
from __future__ import annotations

import marshal
import os
import sys

#: Data-class entries kept at most: past it (sources changed many times) the oldest go.
MAX_ENTRIES = 400
#: Modules kept per installation folder, and folders' files kept per build (the most recently written).
MAX_MODULES = 2000
MAX_ROOTS = 4
#: Bumped when the file's form changes.
FORMAT = 4
#: What the cache's code comes as: bytes (marshalled this run) or slices of the file's buffer.
_BLOBS = (bytes, memoryview)
#: Our top-level packages (what the module finder serves).
PACKAGES = ("repl", "snapshot", "layouts")
#: The folder this installation's packages are in.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache_path() -> str:
    # the base as snapshot.binary.cache_dir has it; not imported from there: importing the
    # snapshot package declares the data classes this file is to give their code first
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyspy-repl", "startup", "%s-%08x.marshal" % (build_tag(), hash_text(ROOT)))


def build_tag() -> str:
    """The build's identity: the version string names the release, compiler and build date."""
    return "%s-%08x" % (sys.implementation.cache_tag, hash_text(sys.version))


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
    """Fill ``records.CODE`` and put the module finder in place from the cache; save what
    this run adds at exit."""
    path = cache_path()
    data = _load(path)
    finder = _CachedModules(data["modules"], set(sys.modules))
    # Just ahead of Python's path finder: a finder someone put in front of it still comes first.
    path_finder = sys.modules["_frozen_importlib_external"].PathFinder
    place = sys.meta_path.index(path_finder) if path_finder in sys.meta_path else len(sys.meta_path)
    sys.meta_path.insert(place, finder)
    from layouts import records     # served by the finder already
    records.CODE.update(data["records"])
    import atexit
    atexit.register(_save, path, records, finder)


class _CachedModules:
    """Finder and loader of our modules from the cache (``importlib``'s protocol: ``find_spec``,
    ``create_module``, ``exec_module``)."""

    def __init__(self, entries: dict, before: set):
        #: name -> (source path, its st_mtime_ns, its st_size, is a package, marshalled code)
        self.entries = entries
        #: what was imported before this finder was in place (not ours to store)
        self.before = before
        self.served: set = set()
        self.stale = False
        self._code: dict = {}

    def find_spec(self, name, path=None, target=None):
        entry = self.entries.get(name)
        if entry is None:
            return None
        origin, mtime_ns, size, package, blob = entry
        try:
            st = os.stat(origin)
            code = marshal.loads(blob) if (st.st_mtime_ns, st.st_size) == (mtime_ns, size) else None
        except (OSError, ValueError, EOFError, TypeError):
            code = None
        if type(code).__name__ != "code":
            del self.entries[name]     # changed since (or damaged): imported the usual way, stored anew
            self.stale = True
            return None
        self._code[name] = code
        spec = sys.modules["_frozen_importlib"].ModuleSpec(name, self, origin=origin, is_package=package)
        if package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None     # the usual module object

    def exec_module(self, module) -> None:
        exec(self.get_code(module.__name__), module.__dict__)

    def get_code(self, name: str):
        code = self._code.pop(name, None)
        if code is None:
            code = marshal.loads(self.entries[name][4])
        self.served.add(name)
        return code

    def is_package(self, name: str) -> bool:
        return self.entries[name][3]

    def imported_elsewhere(self) -> dict:
        """Entries for our modules this run imported the usual way (none: nothing to save)."""
        found = {}
        for name, module in list(sys.modules.items()):
            if name in self.served or name in self.before or name.partition(".")[0] not in PACKAGES:
                continue
            spec = getattr(module, "__spec__", None)
            origin = getattr(spec, "origin", None) or ""
            get_code = getattr(getattr(spec, "loader", None), "get_code", None)
            if not origin.endswith(".py") or not origin.startswith(ROOT + os.sep) or get_code is None:
                continue
            try:
                st = os.stat(origin)    # before the code: a change in between is seen next time
                blob = marshal.dumps(get_code(name))
            except (OSError, ValueError, ImportError, SyntaxError):
                continue
            found[name] = (origin, st.st_mtime_ns, st.st_size, spec.submodule_search_locations is not None, blob)
        return found


def _load(path: str) -> dict:
    """The cache's entries, their code as slices of the one buffer the file was read into.

    Why slices: the file is the index (one marshalled dict: names, where each entry's code is)
    followed by every entry's marshalled code, counted back from the end of the file.  Reading
    the index is one small ``marshal.loads``; each module's code is unmarshalled straight from
    the buffer when imported, never copied out first (format 3 unmarshalled the whole file,
    copying some 800 KB of code into new objects before any import: half a millisecond)."""
    empty = {"records": {}, "modules": {}}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return empty
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return empty    # not ours alone: never run code someone else could have written
        with os.fdopen(fd, "rb", closefd=False) as f:
            buffer = memoryview(f.read())
        data = marshal.loads(buffer)  # the index; the code after it is left in the buffer
    except (OSError, ValueError, EOFError, TypeError):
        return empty
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("root") != ROOT:
        return empty    # (another folder whose name hashed the same: compiled and imported as before)
    records = data.get("records")
    modules = data.get("modules")
    if not isinstance(records, dict) or not isinstance(modules, dict):
        return empty
    end = len(buffer)

    def blob(where):
        """The code an index entry points at: (bytes back from the end, length); None if outside."""
        if type(where) is not tuple or len(where) != 2 or type(where[0]) is not int or type(where[1]) is not int:
            return None
        back, size = where
        return buffer[end - back:end - back + size] if 0 <= size <= back <= end else None

    kept_records = {}
    for key, where in records.items():
        code = blob(where)
        if isinstance(key, tuple) and len(key) == 2 and code is not None:
            kept_records[key] = code
    kept_modules = {}
    for name, entry in modules.items():
        if isinstance(name, str) and isinstance(entry, tuple) and len(entry) == 5 and isinstance(entry[0], str):
            code = blob(entry[4])
            if code is not None:
                kept_modules[name] = entry[:4] + (code,)
    return {"records": kept_records, "modules": kept_modules}


def _save(path: str, records, finder: _CachedModules) -> None:
    added = finder.imported_elsewhere()
    if not records.COMPILED and not added and not finder.stale:
        return
    # Least recently used first, then what this run used and compiled; the newest MAX_ENTRIES
    # are kept (this install's data-class entries change with its commands, not with other installs:
    # each installation folder has its own file).
    recent = dict.fromkeys(records.USED + records.COMPILED)
    order = [key for key in records.CODE if key not in recent] + list(recent)
    kept_records = {}
    for key in order[-MAX_ENTRIES:]:
        code = records.CODE[key]
        kept_records[key] = code if type(code) in _BLOBS else marshal.dumps(code)
    entries = dict(finder.entries)
    entries.update(added)
    if len(entries) > MAX_MODULES:
        entries = dict(list(entries.items())[-MAX_MODULES:])
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_file_bytes(kept_records, entries))
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    _forget_old_folders(os.path.dirname(path), path)


def _file_bytes(records: dict, modules: dict) -> bytes:
    """The file ``_load`` reads: the index, then every entry's code (placed counting back from
    the end of the file, so the index need not know its own length)."""
    blobs = []
    at = 0
    places = {}
    for code in list(records.values()) + [entry[4] for entry in modules.values()]:
        places[id(code)] = at
        blobs.append(code)
        at += len(code)
    total = at
    index = {"format": FORMAT, "root": ROOT,
             "records": {key: (total - places[id(code)], len(code)) for key, code in records.items()},
             "modules": {name: entry[:4] + ((total - places[id(entry[4])], len(entry[4])),)
                         for name, entry in modules.items()}}
    return marshal.dumps(index) + b"".join(blobs)


def _forget_old_folders(folder: str, kept: str) -> None:
    """Remove this build's files beyond ``MAX_ROOTS``, least recently written first (a folder
    still in use only writes its file again on its next run)."""
    prefix = build_tag() + "-"
    try:
        if os.path.exists(os.path.join(folder, build_tag() + ".marshal")):
            os.unlink(os.path.join(folder, build_tag() + ".marshal"))  # the one file of format 2
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".marshal")]
        if len(names) <= MAX_ROOTS:
            return
        paths = [os.path.join(folder, n) for n in names]
        paths.sort(key=lambda p: (p == kept, os.stat(p).st_mtime_ns))
        for old in paths[:len(paths) - MAX_ROOTS]:
            os.unlink(old)
    except OSError:
        pass
