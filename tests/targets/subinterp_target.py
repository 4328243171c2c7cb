"""Target for the every-interpreter test: threads in the main interpreter and in two subinterpreters.

    python subinterp_target.py TRUTH.json [START_FILE]

3.12: ``_xxsubinterpreters``; 3.13+: ``_interpreters``.  Two threads each run
code in their own subinterpreter (sleeping there); TRUTH has the interpreter
ids and when every thread is in place.  Exits 3 when the interpreter has no
subinterpreter module.  With START_FILE, the subinterpreters are made only
once that file exists (a sampler attached before then sees them appear).
"""
import json
import os
import sys
import threading
import time

try:
    import _interpreters as interpreters
except ImportError:
    try:
        import _xxsubinterpreters as interpreters
    except ImportError:
        sys.exit(3)

TRUTH_PATH = os.path.abspath(sys.argv[1])
if len(sys.argv) > 2:
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.01)
subs = [interpreters.create() for _ in range(2)]   # kept: 3.12 destroys an interpreter with its last ID object
ids = [int(sub) for sub in subs]
marker_dir = os.path.dirname(TRUTH_PATH)


def run(index, sub):
    code = "import time, os\nopen(%r, 'w').close()\ntime.sleep(3600)\n" % os.path.join(marker_dir, "in-sub-%d" % index)
    interpreters.run_string(sub, code)


threads = [threading.Thread(target=run, args=(i, sub), name="sub-runner-%d" % i, daemon=True)
           for i, sub in enumerate(subs)]
for t in threads:
    t.start()
while not all(os.path.exists(os.path.join(marker_dir, "in-sub-%d" % i)) for i in range(2)):
    time.sleep(0.01)
with open(TRUTH_PATH + ".tmp", "w") as fh:
    json.dump({"main_thread": threading.main_thread().ident, "subinterpreters": ids,
               "runner_threads": [t.ident for t in threads]}, fh)
os.rename(TRUTH_PATH + ".tmp", TRUTH_PATH)
time.sleep(3600)
