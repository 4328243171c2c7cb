"""numpy's object layouts (x86-64), the same in numpy 1.x and 2.x: scalars and the array header.

Pure data, from numpy's public headers (``ndarraytypes.h``, ``arrayscalars.h``):
every array scalar is ``PyObject_HEAD`` followed by its C value (``obval``);
``PyArrayObject_fields`` starts ``data, nd, dimensions, strides, base, descr``;
``PyArray_Descr`` starts with ``typeobj`` (the scalar type, whose name is the
dtype's).  Types are told by ``tp_name``.
"""
from __future__ import annotations

#: Offset of a scalar's value.
SCALAR_VALUE = 16
#: Scalar ``tp_name`` (without "numpy.") -> struct format of the value.
SCALAR_FORMATS = {
    "int8": "b", "byte": "b", "int16": "h", "short": "h", "int32": "i", "intc": "i",
    "int64": "q", "long": "q", "int_": "q", "longlong": "q", "intp": "q",
    "uint8": "B", "ubyte": "B", "uint16": "H", "ushort": "H", "uint32": "I", "uintc": "I",
    "uint64": "Q", "ulong": "Q", "uint": "Q", "ulonglong": "Q", "uintp": "Q",
    "float16": "e", "half": "e", "float32": "f", "single": "f", "float64": "d", "double": "d",
    "complex64": "ff", "csingle": "ff", "complex128": "dd", "cdouble": "dd",
    "bool": "?", "bool_": "?",
}
#: ``PyArrayObject_fields``.
ARRAY_ND = 24
ARRAY_DIMENSIONS = 32
ARRAY_DESCR = 56
#: ``PyArray_Descr.typeobj``.
DESCR_TYPEOBJ = 16
#: Most dimensions of an array (NPY_MAXDIMS: 32 in numpy 1, 64 in numpy 2).
MAX_DIMS = 64
#: ``tp_name`` of the array type.
ARRAY_TYPE = "numpy.ndarray"
