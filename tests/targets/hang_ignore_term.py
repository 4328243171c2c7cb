"""A process that ignores SIGTERM (and a child that does too), sleeping forever.

    python hang_ignore_term.py

Only SIGKILL ends them.  The parent starts one child of the same script with
``--child`` and waits for it.  Stdlib only; runs on 2.7 and 3.6+.
"""
from __future__ import print_function

import signal
import subprocess
import sys
import time


def stubborn():
    while True:
        time.sleep(0.2)  # STUBBORN


def main():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "--child" in sys.argv:
        stubborn()
    print("stubborn target starting")
    sys.stdout.flush()
    child = subprocess.Popen([sys.executable, __file__, "--child"])
    child.wait()  # PARENT-WAIT


if __name__ == "__main__":
    main()
