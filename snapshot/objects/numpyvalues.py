"""numpy scalars and arrays rendered from memory (layouts in ``layouts/numpy_objects.py``).

Scalars print by value, exactly as the target's numpy would: numpy 2 reprs
carry the type (``np.int8(2)``, ``np.float32(0.1)``, ``np.True_``), numpy 1
reprs are the bare value (``2``, ``0.1``, ``True``).  Which one applies is
the target's ``numpy.__version__`` (asked once through ``numpy_major``; when
unknown, numpy 2's form).  Floats use the shortest text that reads back to
the same value of their own width, as numpy does.  Arrays show their shape
and dtype: ``array(shape=(3, 4), dtype=float64)`` (the values are not read).
"""
from __future__ import annotations

import math
import struct

from layouts import numpy_objects as NP

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional


_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")


def numpy_major(process, layout, interp: int, objects) -> Optional[int]:
    """The major version in ``numpy.__version__`` of the interpreter at ``interp``, or None
    (numpy not imported there)."""
    struct_ = layout.PyInterpreterState
    field = "imports_modules" if "imports_modules" in struct_ else "modules"
    modules = int.from_bytes(process.read(interp + struct_.fields[field].offset, 8), "little")
    numpy = objects.dict_get(modules, "numpy") if modules else None
    version = objects.getattr(numpy, "__version__") if numpy else None
    if not version:
        return None
    head = objects.string(version, 32).split(".", 1)[0]
    return int(head) if head.isdigit() else None


def is_numpy_type(name: str) -> bool:
    return name.startswith("numpy.")


def render(reader, addr: int, info, numpy_major: Optional[int]) -> Optional[str]:
    """The repr of a numpy scalar or array, or None when it is another numpy type."""
    name = info.name
    if name == NP.ARRAY_TYPE:
        return _array(reader, addr)
    short = name[len("numpy."):]
    fmt = NP.SCALAR_FORMATS.get(short)
    if fmt is None:
        return None
    size = struct.calcsize("<" + fmt)
    values = struct.unpack("<" + fmt, reader._read(addr + NP.SCALAR_VALUE, size))
    modern = numpy_major is None or numpy_major >= 2
    if fmt == "?":
        if modern:
            return "np.True_" if values[0] else "np.False_"
        return "True" if values[0] else "False"
    if fmt in ("ff", "dd"):
        text = _complex_text(values[0], values[1], fmt[0])
        return "np.%s(%s)" % (short, text.strip("()")) if modern else text
    if fmt in "efd":
        text = _float_text(values[0], fmt)
    else:
        text = str(values[0])
    return "np.%s(%s)" % (short, text) if modern else text


def _float_text(value: float, fmt: str) -> str:
    """Shortest text that reads back as the same ``fmt``-width float, in Python's repr style."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if fmt == "d":
        return repr(value)
    packed = struct.pack("<" + fmt, value)
    for digits in range(1, 18):
        text = "%.*g" % (digits, value)
        if struct.pack("<" + fmt, float(text)) == packed:
            return repr(float(text))
    return repr(value)


def _complex_text(real: float, imag: float, fmt: str) -> str:
    """``repr(complex)`` with each part at its own width (parts have no forced ``.0``, as in CPython)."""
    imag_text = _part_text(imag, fmt)
    if real == 0 and math.copysign(1.0, real) > 0:
        return imag_text + "j"
    real_text = _part_text(real, fmt)
    sign = "" if imag_text.startswith("-") else "+"
    return "(%s%s%sj)" % (real_text, sign, imag_text)


def _part_text(value: float, fmt: str) -> str:
    text = _float_text(value, fmt)
    return text[:-2] if text.endswith(".0") else text


def _array(reader, addr: int) -> str:
    head = reader._read(addr, NP.ARRAY_DESCR + 8)
    nd = _I32.unpack_from(head, NP.ARRAY_ND)[0]
    if not 0 <= nd <= NP.MAX_DIMS:
        return "<numpy.ndarray object at 0x%x>" % addr
    dims = ()
    if nd:
        pointer = _U64.unpack_from(head, NP.ARRAY_DIMENSIONS)[0]
        dims = struct.unpack("<%dq" % nd, reader._read(pointer, 8 * nd))
    shape = "(%s,)" % dims[0] if nd == 1 else "(%s)" % ", ".join(str(d) for d in dims)
    dtype = "?"
    descr = _U64.unpack_from(head, NP.ARRAY_DESCR)[0]
    if descr:
        typeobj = _U64.unpack(reader._read(descr + NP.DESCR_TYPEOBJ, 8))[0]
        if typeobj:
            dtype = reader._type_info(typeobj).name.rsplit(".", 1)[-1]
    return "array(shape=%s, dtype=%s)" % (shape, dtype)
