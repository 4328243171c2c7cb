"""The house's dependency rules, checked on the source (no import is executed).

* No import circle anywhere in ``layouts/``, ``snapshot/`` and ``repl/``: every
  ``import`` and ``from ... import`` counts, at module level or inside a
  function (a lazy import still makes two modules depend on each other).
* ``layouts/`` and ``snapshot/`` never import ``repl/`` (dependencies point down).
* ``layouts/`` imports nothing of ours but ``layouts/``.

Importing a package runs its ``__init__``, so ``from pkg.mod import x`` counts
as an edge to ``pkg.mod`` only (a package's ``__init__`` that imports its own
submodules would otherwise make every submodule's sibling import a circle).
"""
from __future__ import annotations

import ast
import os
import re
from typing import Dict, List, Optional, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOMS = ("layouts", "snapshot", "repl")


def module_files() -> Dict[str, str]:
    """Dotted module name -> path, for every .py file of the three rooms."""
    found = {}
    for room in ROOMS:
        for folder, dirs, files in os.walk(os.path.join(ROOT, room)):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def _resolve(module: str, is_package: bool, level: int, target: Optional[str]) -> str:
    if not level:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _is_main_block(node) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def _without_main_block(tree: ast.Module) -> ast.Module:
    """The module without its top-level ``if __name__ == "__main__":`` blocks: they run only
    when the file is a script, as the module ``__main__``, so their imports are no edges of
    the package's import graph (``python -m repl.cli`` imports ``repl.entry``, which imports
    ``repl.cli``: a second module object, no circle)."""
    return ast.Module(body=[n for n in tree.body if not _is_main_block(n)], type_ignores=[])


def imports_of(module: str, path: str, known: Set[str]) -> Set[str]:
    """The modules of ours that ``module`` imports (anywhere in its body)."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    out: Set[str] = set()

    def add(name: str) -> None:
        # the longest prefix that is one of our modules
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in known:
                if candidate != module:
                    out.add(candidate)
                return
            parts.pop()

    for node in ast.walk(_without_main_block(tree)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                full = "%s.%s" % (base, alias.name) if base else alias.name
                if full in known:      # from pkg import submodule
                    add(full)
                else:
                    add(base)
    return out


def graph() -> Dict[str, Set[str]]:
    files = module_files()
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def find_cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Every strongly connected component with more than one module (Tarjan), as sorted lists."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    cycles: List[List[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        # iterative DFS, so a deep graph never hits the recursion limit
        work = [(node, iter(sorted(edges.get(node, ()))))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == current:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def _room(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_checker_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(edges) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve():
    assert _resolve("repl.commands.navigate", False, 2, "render") == "repl.render"
    assert _resolve("repl.commands", True, 1, "base") == "repl.commands.base"
    assert _resolve("snapshot.process.live", False, 1, None) == "snapshot.process"


def test_no_import_cycles():
    edges = graph()
    assert len(edges) > 20, "found too few modules: %s" % sorted(edges)
    cycles = find_cycles(edges)
    assert not cycles, "import circles:\n" + "\n".join(
        "  " + " <-> ".join(c) + "\n    " + "\n    ".join(
            "%s imports %s" % (m, ", ".join(sorted(edges[m] & set(c)))) for m in c)
        for c in cycles)


def test_dependencies_point_down():
    edges = graph()
    wrong = []
    for module, targets in sorted(edges.items()):
        room = _room(module)
        for target in sorted(targets):
            other = _room(target)
            if room in ("layouts", "snapshot") and other == "repl":
                wrong.append("%s imports %s" % (module, target))
            if room == "layouts" and other != "layouts":
                wrong.append("%s imports %s" % (module, target))
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------- the house rules of issue 8
def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT).replace(os.sep, "/")


def _trees():
    for module, path in sorted(module_files().items()):
        with open(path, encoding="utf-8") as fh:
            yield _rel(path), ast.parse(fh.read(), path)


def _docstrings(tree: ast.AST) -> Set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


_PROC = re.compile(r"(?<![\w.])/proc(?=/|$)")
#: Modules outside ``snapshot/process/`` that may name /proc, and why.
PROC_ALLOWED = {
    "snapshot/writers/destination.py": "recognises an output path such as /proc/self/fd/1 (the user's stdout); "
                                       "it never reads a target's /proc",
}


def test_proc_is_read_only_in_snapshot_process():
    """A live process's /proc is parsed in ``snapshot/process/`` only (``LiveProcess``, ``procfs``)."""
    found = []
    for rel, tree in _trees():
        if rel.startswith("snapshot/process/") or rel in PROC_ALLOWED:
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and _PROC.search(node.value):
                found.append("%s:%d %r" % (rel, node.lineno, node.value[:60]))
    assert not found, "/proc named outside snapshot/process/:\n" + "\n".join(found)


_VERSION_ATTRS = {"version", "python_version", "py_version", "version_info", "hexversion"}
_VERSION_TEXT = re.compile(r"^[23]\.\d{1,2}$")
#: Modules that compare the version of the Python running pyspy-repl (never the target's), and why.
HOST_VERSION_ALLOWED = {
    "snapshot/hostcompat.py": "dataclass(slots=) needs a 3.10 host",
    "repl/debuggers/sitepaths.py": "the Python embedded in gdb/lldb must be 3.9 or newer",
}


def _names_a_version(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in _VERSION_ATTRS:
            return True
        if isinstance(sub, ast.Tuple) and len(sub.elts) in (2, 3) and all(
                isinstance(e, ast.Constant) and type(e.value) is int for e in sub.elts[:2]) \
                and sub.elts[0].value in (2, 3) and sub.elts[1].value <= 20:
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _VERSION_TEXT.match(sub.value):
            return True
    return False


def test_no_version_branches_outside_layouts():
    """Code outside ``layouts/`` asks the layout; it never compares a CPython version
    (``x.version >= (3, 11)``, ``minor == "3.12"``).  A version is still looked up in a
    table (``SUPPORTED_VERSIONS``, ``get_layout``): that is not a branch."""
    found = []
    for rel, tree in _trees():
        if rel.startswith("layouts/"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if any(_names_a_version(part) for part in [node.left] + list(node.comparators)):
                if rel in HOST_VERSION_ALLOWED and "version_info" in ast.unparse(node):
                    continue
                found.append("%s:%d %s" % (rel, node.lineno, ast.unparse(node)[:80]))
    assert not found, "version branches outside layouts/:\n" + "\n".join(found)


#: "About 500 lines": a module a few lines over is not split for that alone.
MAX_LINES = 510
#: Modules allowed past ``MAX_LINES``, and why.
LONG_ALLOWED: Dict[str, str] = {}


def test_modules_stay_small():
    long = []
    for rel, _ in _trees():
        with open(os.path.join(ROOT, rel), encoding="utf-8") as fh:
            count = sum(1 for _ in fh)
        if count > MAX_LINES and rel not in LONG_ALLOWED:
            long.append("%s: %d lines" % (rel, count))
    assert not long, "modules over %d lines (split by job, or give a reason in LONG_ALLOWED):\n%s" % (
        MAX_LINES, "\n".join(long))
