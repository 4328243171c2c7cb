"""Innermost functions that mean a thread is waiting, whatever the OS says.

(What the OS says about threads is read by ``snapshot.process``: run states
in ``tasks``, OS ids before 3.11 in ``pthread``.)
"""
from __future__ import annotations


#: Innermost functions that mean "waiting" even when the OS says running
#: (the thread may be spinning briefly in them), as py-spy treats them.
IDLE_FUNCTIONS = {
    ("wait", "threading.py"), ("select", "selectors.py"), ("poll", "selectors.py"),
    ("select", "asyncore.py"), ("poll", "asyncore.py"), ("poll2", "asyncore.py"),
    ("poll", "zmq/sugar/poll.py"), ("wait", "gevent/hub.py"), ("poll", "tornado/ioloop.py"),
}


def is_idle_function(function: str, filename: str) -> bool:
    short = function.rsplit(".", 1)[-1]
    for name, suffix in IDLE_FUNCTIONS:
        if short == name and filename.endswith(suffix):
            return True
    return False
