"""Hostile environments and odd targets: cache folders, thread ids, launched process trees.

* a damaged binary-cache entry is discarded (the dump is right, the next run quiet);
  an unwritable cache folder: attach works, one warning line;
* the data classes' compiled methods come from the cache on a second start (nothing
  compiled); a cache file others could write, or a damaged one, is ignored, silently;
* ``dump --pid TID`` of a thread id: labelled as its process, and says so;
* ``record -s -- CMD`` leaves none of CMD's descendants running.

Run:  python -m pytest tests/test_environment.py
"""
from __future__ import annotations

import glob
import json
import marshal
import os
import subprocess
import sys
import time

import psutil
import pytest

import pythons
from pythons import run_tool, tool_env

SLEEPER = ("import threading, time\n"
           "def napping():\n    time.sleep(3600)\n"
           "threading.Thread(target=napping, name='napper', daemon=True).start()\n"
           "time.sleep(3600)\n")


@pytest.fixture(scope="module")
def sleeper(once_python):
    proc = subprocess.Popen([once_python.path, "-c", SLEEPER], start_new_session=True)
    deadline = time.monotonic() + 30
    while len(os.listdir("/proc/%d/task" % proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    yield proc
    proc.kill()
    proc.wait()


def _env(cache):
    env = tool_env()
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def test_damaged_cache_entry_is_discarded(sleeper, tmp_path):
    env = _env(tmp_path)
    good = run_tool(["dump", "--pid", sleeper.pid], env=env)
    assert good.returncode == 0 and "napping" in good.stdout.decode()
    entries = glob.glob(str(tmp_path / "pyspy-repl" / "binaries" / "*.marshal"))
    assert entries
    for path in entries:          # a plausible but wrong entry: the runtime moved by a page
        with open(path, "rb") as fh:
            data = marshal.loads(fh.read())
        if data.get("symbols", {}).get("_PyRuntime"):
            data["symbols"]["_PyRuntime"] += 0x1000
        with open(path, "wb") as fh:
            fh.write(marshal.dumps(data))
    r = run_tool(["dump", "--pid", sleeper.pid], env=env)
    err = r.stderr.decode()
    assert r.returncode == 0 and "napping" in r.stdout.decode(), (r.stdout.decode(), err)
    assert err.count("discarded a damaged entry") == 1 and "Traceback" not in err, err
    r = run_tool(["dump", "--pid", sleeper.pid], env=env)
    assert r.returncode == 0 and r.stderr.decode().strip() == "", r.stderr.decode()
    for path in entries:
        with open(path, "w") as fh:
            fh.write("{not marshal")
    r = run_tool(["dump", "--pid", sleeper.pid], env=env)
    assert r.returncode == 0 and "napping" in r.stdout.decode(), r.stderr.decode()


def test_unwritable_cache_folder(sleeper, tmp_path):
    (tmp_path / "pyspy-repl").write_text("a file where the cache folder should be")
    r = run_tool(["dump", "--pid", sleeper.pid], env=_env(tmp_path))
    err = [l for l in r.stderr.decode().splitlines() if l.strip()]
    assert r.returncode == 0 and "napping" in r.stdout.decode(), err
    assert len(err) == 1 and "cannot write the binary cache" in err[0] and "XDG_CACHE_HOME" in err[0], err


#: ``pyspy-repl ARGS`` that says on stderr how many data classes it compiled (none were
#: declared before the front end's start-up took the cache: importing ``layouts.records``
#: declares nothing).
COUNTING = [sys.executable, "-c",
            "import atexit, sys\n"
            "from layouts import records\n"
            "atexit.register(lambda: sys.stderr.write('compiled %d\\n' % len(records.COMPILED)))\n"
            "sys.argv[0] = 'pyspy-repl'\n"
            "from repl.cli import console_main\n"
            "console_main()\n"]


def _compiled(r) -> int:
    err = r.stderr.decode()
    assert r.returncode == 0 and "napping" in r.stdout.decode(), err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("compiled "), err
    return int(lines[0].split()[1])


def test_second_start_compiles_no_data_class(sleeper, tmp_path):
    env = _env(tmp_path)
    first = run_tool(["dump", "--pid", sleeper.pid], env=env, prefix=COUNTING)
    assert _compiled(first) >= 20           # the model, facts, layouts...
    files = glob.glob(str(tmp_path / "pyspy-repl" / "startup" / "*.marshal"))
    assert len(files) == 1 and os.stat(files[0]).st_mode & 0o077 == 0, files
    second = run_tool(["dump", "--pid", sleeper.pid], env=env, prefix=COUNTING)
    assert _compiled(second) == 0 and second.stdout == first.stdout
    os.chmod(files[0], 0o620)               # another user could have written it: not run
    assert _compiled(run_tool(["dump", "--pid", sleeper.pid], env=env, prefix=COUNTING)) >= 20
    assert _compiled(run_tool(["dump", "--pid", sleeper.pid], env=env, prefix=COUNTING)) == 0
    with open(files[0], "wb") as fh:       # damaged: compiled again, nothing said
        fh.write(b"\xe3not marshal")
    assert _compiled(run_tool(["dump", "--pid", sleeper.pid], env=env, prefix=COUNTING)) >= 20


#: ``pyspy-repl ARGS`` that says on stderr which of our modules were imported the usual way
#: (not served by the start-up cache) and whether ``repl.render`` carries an ``EDITED`` mark.
USUAL_IMPORTS = [sys.executable, "-c",
                 "import atexit, sys\n"
                 "def report():\n"
                 "    usual = sorted(n for n, m in list(sys.modules.items()) if n.split('.')[0] in\n"
                 "                   ('repl', 'snapshot', 'layouts') and type(getattr(m.__spec__, 'loader', None))\n"
                 "                   .__name__ != '_CachedModules')\n"
                 "    edited = getattr(sys.modules.get('repl.render'), 'EDITED', False)\n"
                 "    sys.stderr.write('usual %s edited %s\\n' % (','.join(usual), edited))\n"
                 "atexit.register(report)\n"
                 "sys.argv[0] = 'pyspy-repl'\n"
                 "from repl.cli import console_main\n"
                 "console_main()\n"]
#: What is imported before the cache's finder is in place (it lives in repl.startup).
BEFORE_FINDER = ["repl", "repl.cli", "repl.startup"]


def test_second_start_imports_our_modules_from_the_cache(sleeper, tmp_path):
    """Our modules come from the start-up cache on a second start; an edited source is imported
    anew (and its new code runs), a cache file others could write or a damaged one is ignored,
    and the output never changes."""
    import shutil
    root = tmp_path / "install"
    for package in ("repl", "snapshot", "layouts"):
        shutil.copytree(os.path.join(pythons.REPO, package), root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env = _env(tmp_path / "cache")
    env["PYTHONPATH"] = str(root)

    def run():   # not from the checkout: ``-c`` puts the working directory first on the path
        r = subprocess.run(USUAL_IMPORTS + ["dump", "--pid", str(sleeper.pid)], capture_output=True,
                           timeout=120, cwd=str(tmp_path), env=env)
        err = r.stderr.decode().splitlines()
        assert r.returncode == 0 and len(err) == 1 and err[0].startswith("usual "), r.stderr.decode()
        words = err[0].split()
        return r.stdout, words[1].split(","), words[3] == "True"

    first, usual, _ = run()
    assert len(usual) > 40 and "snapshot.target" in usual
    files = glob.glob(str(tmp_path / "cache" / "pyspy-repl" / "startup" / "*.marshal"))
    assert len(files) == 1 and os.stat(files[0]).st_mode & 0o077 == 0, files
    out, usual, _ = run()
    assert usual == BEFORE_FINDER and out == first
    with open(root / "repl" / "render.py", "a") as fh:
        fh.write("\nEDITED = True\n")
    out, usual, edited = run()
    assert usual == sorted(BEFORE_FINDER + ["repl.render"]) and edited and out == first
    out, usual, edited = run()
    assert usual == BEFORE_FINDER and edited and out == first
    os.chmod(files[0], 0o620)               # another user could have written it: not run
    out, usual, _ = run()
    assert len(usual) > 40 and out == first
    out, usual, _ = run()
    assert usual == BEFORE_FINDER
    with open(files[0], "wb") as fh:        # damaged: imported the usual way, nothing said
        fh.write(b"\xe3not marshal")
    out, usual, _ = run()
    assert len(usual) > 40 and out == first


def test_each_install_has_its_own_cache_file(sleeper, tmp_path):
    """Two installs of the same build keep one file each (a run reads only its own folder's
    code); past ``MAX_ROOTS`` folders the least recently written file goes, and the file of
    the one format-2 cache (every folder in one file) is removed."""
    import shutil
    from repl import startup
    env = _env(tmp_path / "cache")
    folder = tmp_path / "cache" / "pyspy-repl" / "startup"
    installs = []
    for n in range(startup.MAX_ROOTS + 1):
        root = tmp_path / ("install%d" % n)
        for package in ("repl", "snapshot", "layouts"):
            shutil.copytree(os.path.join(pythons.REPO, package), root / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
        installs.append(str(root))

    def run(root):
        env["PYTHONPATH"] = root
        r = subprocess.run(USUAL_IMPORTS + ["dump", "--pid", str(sleeper.pid)], capture_output=True,
                           timeout=120, cwd=str(tmp_path), env=env)
        err = r.stderr.decode().splitlines()
        assert r.returncode == 0 and len(err) == 1 and err[0].startswith("usual "), r.stderr.decode()
        return r.stdout, err[0].split()[1].split(",")

    first, usual = run(installs[0])
    assert len(usual) > 40
    os.makedirs(folder, exist_ok=True)
    old_format = folder / (startup.build_tag() + ".marshal")
    old_format.write_bytes(marshal.dumps({"format": 2}))
    out, usual = run(installs[1])
    assert len(usual) > 40 and out == first   # the other install's file serves nothing here
    files = sorted(glob.glob(str(folder / "*.marshal")))
    assert len(files) == 2 and str(old_format) not in files, files
    for path in files:
        with open(path, "rb") as fh:
            data = marshal.loads(fh.read())
        paths = {entry[0] for entry in data["modules"].values()}
        root = data["root"]
        assert root in installs[:2] and all(p.startswith(root + os.sep) for p in paths), (root, sorted(paths)[:3])
    for n, root in enumerate(installs):
        out, usual = run(root)
        assert out == first and (usual == BEFORE_FINDER) == (n < 2), (n, usual)
        time.sleep(0.01)   # distinct modification times
    files = glob.glob(str(folder / "*.marshal"))
    assert len(files) == startup.MAX_ROOTS, files
    out, usual = run(installs[0])   # the least recently written (its file was not written again): gone
    assert len(usual) > 40
    out, usual = run(installs[-1])
    assert usual == BEFORE_FINDER


#: ``pyspy-repl ARGS`` that says at exit whether cyclic collection is on and how much start-up froze.
GC_STATE = [sys.executable, "-c",
            "import atexit, gc, sys\n"
            "atexit.register(lambda: sys.stderr.write('gc %d %d\\n' % (gc.isenabled(), gc.get_freeze_count())))\n"
            "sys.argv[0] = 'pyspy-repl'\n"
            "from repl.cli import console_main\n"
            "console_main()\n"]


def test_collection_is_held_for_one_shot_commands_only(sleeper, tmp_path):
    """A dump runs without cyclic collection passes (start-up creates no cycle worth one); a
    long-running command turns it back on, with start-up's objects frozen out of its passes."""
    def state(args):
        r = run_tool(args, env=_env(tmp_path), prefix=GC_STATE)
        assert r.returncode == 0, r.stderr.decode()
        enabled, frozen = r.stderr.decode().strip().splitlines()[-1].split()[1:]
        return int(enabled), int(frozen)
    assert state(["dump", "--pid", sleeper.pid]) == (0, 0)
    enabled, frozen = state(["record", "--pid", sleeper.pid, "-d", "0.3", "--idle", "-f", "raw",
                             "-o", str(tmp_path / "p.raw")])
    assert enabled == 1 and frozen > 1000


#: ``pyspy-repl ARGS`` that says whether its ``atexit`` functions ran ("atexit") and whether
#: the interpreter tore itself down ("teardown": an object in ``builtins`` finalised at exit).
EXIT_PROBE = [sys.executable, "-c",
              "import atexit, builtins, sys\n"
              "class Probe:\n"
              "    def __del__(self): sys.stderr.write('teardown\\n')\n"
              "builtins._exit_probe = Probe()\n"
              "atexit.register(lambda: sys.stderr.write('atexit\\n'))\n"
              "sys.argv[0] = 'pyspy-repl'\n"
              "from repl.cli import console_main\n"
              "console_main()\n"]


def test_one_shot_commands_skip_the_interpreter_teardown(sleeper, tmp_path):
    """After a dump the process ends with ``os._exit`` once the streams are flushed and the
    ``atexit`` functions ran (the teardown was a tenth of its CPU); a long command, an error
    and a one-shot run with a live thread exit the normal way, with the same status."""
    def lines(args, prefix=EXIT_PROBE):
        r = run_tool(args, env=_env(tmp_path), prefix=prefix)
        return r, r.stderr.decode().splitlines()
    r, err = lines(["dump", "--pid", sleeper.pid])
    assert r.returncode == 0 and "atexit" in err and "teardown" not in err, err
    assert "napping (<string>:3)" in r.stdout.decode()   # all of the output was flushed
    r, err = lines(["dump", "--pid", "999999999"])
    assert r.returncode != 0 and "atexit" in err and "teardown" not in err, err
    r, err = lines(["record", "--pid", sleeper.pid, "-d", "0.2", "--idle", "-f", "raw", "-o", str(tmp_path / "p.raw")])
    assert r.returncode == 0 and "atexit" in err and "teardown" in err, err
    alive = [EXIT_PROBE[0], "-c", "import threading, time\n"
             "threading.Thread(target=time.sleep, args=(0.5,)).start()\n" + EXIT_PROBE[2]]
    r, err = lines(["dump", "--pid", sleeper.pid], prefix=alive)
    assert r.returncode == 0 and "atexit" in err and "teardown" in err, err


def test_cache_checksums_are_the_same_in_every_process():
    """``binary.stable_hash`` (the binary cache's checksum, the compiled layouts' key) does not
    change with the hash seed; one changed byte, two swapped or trailing zero bytes change it."""
    code = "from snapshot.binary import stable_hash; print(stable_hash(b'pyspy-repl' * 1000))"
    seen = {subprocess.run([sys.executable, "-c", code], cwd=pythons.REPO, capture_output=True, check=True,
                           env=dict(os.environ, PYTHONPATH=pythons.REPO, PYTHONHASHSEED=seed)).stdout
            for seed in ("0", "1", "12345")}
    assert len(seen) == 1
    sys.path.insert(0, pythons.REPO)
    from snapshot.binary import stable_hash
    data = bytes(range(256)) * 40
    changed = {stable_hash(data[:i] + bytes([(data[i] + 1) % 256]) + data[i + 1:]) for i in range(0, len(data), 97)}
    assert stable_hash(data) not in changed and len(changed) == len(range(0, len(data), 97))
    for i, j in ((0, 61), (5, 5 + 61 * 8), (100, 9000)):
        swapped = bytearray(data)
        swapped[i], swapped[j] = data[j], data[i]
        assert stable_hash(bytes(swapped)) != stable_hash(data)
    assert len({stable_hash(data + b"\0" * n) for n in range(4)}) == 4
    assert int(seen.pop()) == stable_hash(b"pyspy-repl" * 1000)


def test_thread_id_is_labelled_as_its_process(sleeper):
    tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % sleeper.pid))
    tid = [t for t in tids if t != sleeper.pid][0]
    r = run_tool(["dump", "--pid", tid])
    out, err = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == 0, err
    assert out.startswith("Process %d:" % sleeper.pid), out[:200]
    assert "pid %d is a thread of process %d" % (tid, sleeper.pid) in err
    r = run_tool(["dump", "--pid", tid, "--json"])
    assert all(t["pid"] == sleeper.pid for t in json.loads(r.stdout.decode()) if "pid" in t)


TREE = r"""
import subprocess, sys, time
# a child that starts a grandchild which would outlive it
child = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']); time.sleep(3600)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(3600)
"""


def test_record_subprocesses_leaves_no_descendants(once_python, tmp_path):
    marker = tmp_path / "child.pid"
    out = tmp_path / "p.txt"
    proc = subprocess.Popen([sys.executable, "-m", "repl.cli", "record", "-s", "-d", "3", "-f", "raw", "-o", str(out),
                             "--", once_python.path, "-c", TREE, str(marker)], cwd=pythons.REPO, env=tool_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = set()
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            for p in psutil.Process(proc.pid).children(recursive=True):
                seen.add((p.pid, p.create_time()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert len(seen) >= 3, "the tree never grew: %s" % seen
    time.sleep(0.5)
    left = []
    for pid, created in seen:
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - created) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
                p.kill()
        except psutil.Error:
            pass
    assert not left, "still running after record ended: %s" % left
