"""Where pyspy-repl and its dependencies live, for a debugger's embedded Python.

gdb and lldb embed the *system* Python (3.11 on Debian 12), which sees
neither a virtualenv nor pyenv's site-packages.  ``pyspy-repl gdb-path``
runs in the Python that installed pyspy-repl, so it records the directories
that hold the package and each dependency (``record``); the loader script,
inside the debugger, puts them at the front of ``sys.path`` and checks that
the recorded versions are what imports there (``activate``).

Records go next to the loader scripts of an installed package (when that
directory is writable) and always to ``$XDG_CACHE_HOME/pyspy-repl/debugger-paths.json`` (keyed by the
package's directory, so two installs do not overwrite each other).  This
module must import with the standard library only.
"""
from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional


#: import name -> distribution name, for every dependency the engine imports.
DEPENDENCIES = {"capstone": "capstone", "construct": "construct", "elftools": "pyelftools",
                "psutil": "psutil", "prompt_toolkit": "prompt_toolkit"}
RECORD_NAME = "site-dirs.json"
FORMAT = 1


def package_root() -> str:
    """The directory holding the ``repl``, ``snapshot`` and ``layouts`` packages."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cache_record() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyspy-repl", "debugger-paths.json")


def _local_record() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", RECORD_NAME)


def _module_dir(name: str) -> Optional[str]:
    """The sys.path entry that provides top-level module ``name`` (without importing it)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return os.path.dirname(os.path.abspath(list(spec.submodule_search_locations)[0]))
    if spec.origin and os.path.isabs(spec.origin):
        return os.path.dirname(spec.origin)
    return None


def _versions() -> Dict[str, str]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return {}
    found = {}
    for module, dist in DEPENDENCIES.items():
        try:
            found[module] = version(dist)
        except PackageNotFoundError:
            pass
    return found


def current() -> dict:
    """What this Python sees: the package root, each dependency's directory and version."""
    root = package_root()
    dirs: List[str] = [root]
    modules = {}
    for module in DEPENDENCIES:
        where = _module_dir(module)
        if where is not None:
            modules[module] = where
            if where not in dirs:
                dirs.append(where)
    return {"format": FORMAT, "root": root, "dirs": dirs, "modules": modules, "versions": _versions(),
            "python": sys.executable, "python_version": "%d.%d.%d" % sys.version_info[:3]}


def record() -> dict:
    """Write ``current()`` where the loader scripts will look; returns it."""
    data = current()
    local = _local_record()
    # next to the scripts only in an installed package, never in a source checkout
    if os.path.basename(data["root"]) in ("site-packages", "dist-packages"):
        try:
            with open(local + ".tmp", "w") as fh:
                json.dump(data, fh, indent=1)
            os.replace(local + ".tmp", local)
        except OSError:
            pass
    cache = _cache_record()
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        try:
            with open(cache) as fh:
                table = json.load(fh)
            if not isinstance(table, dict):
                table = {}
        except (OSError, ValueError):
            table = {}
        table[data["root"]] = data
        with open(cache + ".%d.tmp" % os.getpid(), "w") as fh:
            json.dump(table, fh, indent=1)
        os.replace(cache + ".%d.tmp" % os.getpid(), cache)
    except OSError:
        pass
    return data


def recorded(root: Optional[str] = None) -> Optional[dict]:
    """The record for the package at ``root`` (this one by default), or None."""
    root = root or package_root()
    try:
        with open(_local_record()) as fh:
            data = json.load(fh)
        if isinstance(data, dict) and data.get("root") == root and data.get("format") == FORMAT:
            return data
    except (OSError, ValueError):
        pass
    try:
        with open(_cache_record()) as fh:
            data = json.load(fh).get(root)
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return data
    except (OSError, ValueError, AttributeError):
        pass
    return None


def activate() -> List[str]:
    """Inside a debugger: put the recorded directories first on ``sys.path``.

    Returns the problems found (a dependency that does not import, or imports
    from elsewhere than recorded), each a one-line message; empty when all is well.
    """
    problems: List[str] = []
    if sys.version_info < (3, 9):
        problems.append("the debugger embeds Python %d.%d; pyspy-repl needs 3.9 or newer" % sys.version_info[:2])
    data = recorded()
    root = package_root()
    dirs = list(data["dirs"]) if data else [root]
    if data is None:
        problems.append("no record of where pyspy-repl's dependencies are installed: run "
                        "`pyspy-repl gdb-path` (or lldb-path) once with the Python that installed it")
    for where in reversed(dirs):
        if where in sys.path:
            sys.path.remove(where)
        sys.path.insert(0, where)
    expected = data.get("modules", {}) if data else {}
    for module in ("construct", "elftools", "capstone"):
        before = sys.modules.get(module)
        try:
            imported = before or __import__(module)
        except Exception as e:  # noqa: BLE001 - any import failure is reported, not raised
            problems.append("%s does not import in the debugger's Python %d.%d: %s"
                            % (module, sys.version_info[0], sys.version_info[1], e))
            continue
        where = os.path.dirname(os.path.dirname(os.path.abspath(getattr(imported, "__file__", "") or ".")))
        if module in expected and where != expected[module]:
            problems.append("%s imports from %s, not from %s where pyspy-repl's was installed"
                            % (module, where, expected[module]))
    capstone = sys.modules.get("capstone")
    if capstone is not None and getattr(capstone, "CS_API_MAJOR", 5) < 5:
        problems.append("capstone %s is too old (need 5 or newer)" % getattr(capstone, "__version__", "?"))
    return problems
