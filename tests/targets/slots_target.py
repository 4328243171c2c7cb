"""Target for REPL print through __slots__ and the MRO.

    python slots_target.py READY_PATH

``hold()`` keeps ``obj`` (a Child: slots ``x``, ``y`` (unset) over Base's slot
``base_val``, a class attribute ``LIMIT`` on Root) and ``kls`` (Child itself)
as locals while sleeping in C, after writing READY_PATH.
"""
import os
import sys
import time

READY = os.path.abspath(sys.argv[1])


class Root:
    LIMIT = 7
    __slots__ = ()


class Base(Root):
    __slots__ = ("base_val",)


class Child(Base):
    __slots__ = ("x", "y")

    def __init__(self):
        self.base_val = "from base"
        self.x = [1, 2]


def hold():
    obj = Child()
    kls = Child
    with open(READY + ".tmp", "w") as fh:
        fh.write("ready")
    os.replace(READY + ".tmp", READY)
    time.sleep(100000)


hold()
