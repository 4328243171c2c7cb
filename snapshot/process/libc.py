"""The C library functions the engine calls, bound through ``_ctypes`` (what ``ctypes`` is built on).

Why not ``ctypes`` itself: its package declares dozens of types, loaders and helpers when
imported, some seven million instructions (a twentieth of a one-shot dump) for the two
functions, one structure and a few buffers the engine needs.  ``_ctypes`` gives the same
objects (``ctypes.Structure`` is ``_ctypes.Structure``, ``ctypes.byref`` is ``_ctypes.byref``),
and the few types below are declared the way ``ctypes`` declares them, so the calls behave
exactly as through ``ctypes``.  Linux x86-64 (LP64), like the rest of the live process.
"""
from __future__ import annotations

import _ctypes
from _ctypes import POINTER, Structure, addressof, byref, get_errno, set_errno  # noqa: F401  (the API)


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


c_size_t = c_ulong     # LP64
c_ssize_t = c_long

#: The process's own symbols and what it links (the C library): ``dlopen(NULL)``.
_PROGRAM = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)


def function(name: str, restype, argtypes):
    """The C function ``name``, called with C's calling convention; ``errno`` is saved right
    after each call and read with ``get_errno`` (what ``ctypes.CDLL(None, use_errno=True)`` does)."""
    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = restype

    bound = Function(_ctypes.dlsym(_PROGRAM, name))
    bound.argtypes = argtypes
    return bound


def create_string_buffer(size: int):
    """A zeroed ``char[size]`` (its bytes: ``.raw``)."""
    return (c_char * size)()


class IOVec(Structure):
    """``struct iovec``."""
    _fields_ = [("iov_base", c_void_p), ("iov_len", c_size_t)]


#: ``process_vm_readv(pid, local iovecs, count, remote iovecs, count, flags)``
process_vm_readv = function("process_vm_readv", c_ssize_t,
                            [c_int, POINTER(IOVec), c_ulong, POINTER(IOVec), c_ulong, c_ulong])
