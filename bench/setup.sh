#!/usr/bin/env bash
# Private tools for the benchmarks: py-spy (latest on PyPI) and austin-dist==3.7.0,
# each in its own venv under ${PYSPY_REPL_BENCH:-$HOME/.cache/pyspy-repl/bench}, and a venv
# holding only pyspy-repl's dependencies (pyproject.toml), which runs the work tree as an
# installed copy runs: no editable-install finder imported at every start.
# Idempotent; never installs into the system environment (except strace, a Debian
# package, installed with apt-get when missing because the syscall counts need it).
# Prints the binaries' paths as KEY=PATH lines (the bench scripts parse them).
set -euo pipefail

ROOT="${PYSPY_REPL_BENCH:-$HOME/.cache/pyspy-repl/bench}"
PY="${BENCH_VENV_PYTHON:-$(command -v python3)}"
AUSTIN_VERSION="3.7.0"
mkdir -p "$ROOT"

make_venv() {  # make_venv DIR
    local dir="$1"
    if [ ! -x "$dir/bin/python" ]; then
        "$PY" -m venv "$dir" >&2
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 || true
    fi
}

# py-spy: latest from PyPI; upgraded at most once a day so reruns stay fast.
make_venv "$ROOT/py-spy"
stamp="$ROOT/py-spy/.checked"
if [ ! -x "$ROOT/py-spy/bin/py-spy" ] || [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
    "$ROOT/py-spy/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade py-spy >&2
    touch "$stamp"
fi

# austin: pinned (4.x wheels need a newer glibc than this machine has).
make_venv "$ROOT/austin"
if ! "$ROOT/austin/bin/python" -m pip show austin-dist 2>/dev/null | grep -qx "Version: $AUSTIN_VERSION"; then
    "$ROOT/austin/bin/python" -m pip install --quiet --disable-pip-version-check "austin-dist==$AUSTIN_VERSION" >&2
fi

# pyspy-repl's own dependencies, as `pip install .` would install them (the work tree itself
# comes in through PYTHONPATH, so every run measures the tree as it is now).
make_venv "$ROOT/pyspy-repl-deps"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$("$PY" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$HERE/pyproject.toml")"
if [ "$(cat "$ROOT/pyspy-repl-deps/.deps" 2>/dev/null)" != "$deps" ]; then
    # shellcheck disable=SC2086
    "$ROOT/pyspy-repl-deps/bin/python" -m pip install --quiet --disable-pip-version-check $(echo "$deps" | sed "s/.*/'&'/" | xargs) >&2
    printf '%s' "$deps" > "$ROOT/pyspy-repl-deps/.deps"
fi

# strace, for process_vm_readv counts (optional: the benches skip the counts without it).
if ! command -v strace >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace) >&2 \
            || echo "warning: could not install strace; syscall counts will be skipped" >&2
    else
        echo "warning: strace missing (apt-get install strace); syscall counts will be skipped" >&2
    fi
fi

PYSPY="$ROOT/py-spy/bin/py-spy"
AUSTIN="$ROOT/austin/bin/austin"
[ -x "$PYSPY" ] || { echo "py-spy not found at $PYSPY" >&2; exit 1; }
[ -x "$AUSTIN" ] || { echo "austin not found at $AUSTIN" >&2; exit 1; }
echo "PYSPY=$PYSPY"
echo "PYSPY_VERSION=$("$PYSPY" --version | awk '{print $2}')"
echo "AUSTIN=$AUSTIN"
echo "AUSTIN_VERSION=$("$AUSTIN" --version 2>&1 | head -1 | awk '{print $2}')"
echo "STRACE=$(command -v strace || true)"
echo "TOOL_PYTHON=$ROOT/pyspy-repl-deps/bin/python"
