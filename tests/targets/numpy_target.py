"""Target for the numpy value tests: numpy scalars and arrays as locals, their reprs as TRUTH.

    python numpy_target.py TRUTH.json

Needs numpy on PYTHONPATH.  Writes ``{"version": numpy.__version__, "reprs": {name: repr}}``
for the locals of ``holder`` while it blocks, then stays there until killed.
"""
import json
import os
import sys
import threading

import numpy as np

TRUTH_PATH = os.path.abspath(sys.argv[1])


def holder():
    i8 = np.int8(2)
    u64 = np.uint64(2 ** 63)
    i64 = np.int64(-5)
    f64 = np.float64(0.5)
    f32 = np.float32(0.1)
    f16 = np.float16(3.14)
    big32 = np.float32(100.0)
    c128 = np.complex128(1 + 2j)
    yes = np.bool_(True)
    no = np.bool_(False)
    scalars = {k: repr(v) for k, v in locals().items()}
    grid = np.zeros((3, 4))
    ints = np.arange(5, dtype=np.int32)
    zero_d = np.array(7.0)
    arrays = {"grid": "array(shape=(3, 4), dtype=float64)", "ints": "array(shape=(5,), dtype=int32)",
              "zero_d": "array(shape=(), dtype=float64)"}
    scalars.update(arrays)
    with open(TRUTH_PATH + ".tmp", "w") as fh:
        json.dump({"version": np.__version__, "reprs": scalars}, fh)
    os.replace(TRUTH_PATH + ".tmp", TRUTH_PATH)
    threading.Event().wait()


holder()
