"""Remote Python objects, read and rendered from outside the process.

Rooms, each building on the one before:

* ``base``: bounded, budgeted, batched reads (``RemoteReader``);
* ``types``: remote types and their kinds, cached by address (``TypeReader``, ``TypeInfo``);
* ``values``: ints, floats, str, bytes, the items of tuples, lists, dicts and sets (``ValueReader``);
* ``namespaces``: dict lookup and instance/module/class attributes (``NamespaceReader``);
* ``reprs``: CPython's ``repr()`` text (``ObjectReader``, the class front ends use).
"""
from .base import MAX_ITEMS
from .reprs import ELLIPSIS, ObjectReader, cut
from .types import TypeInfo

__all__ = ["ObjectReader", "TypeInfo", "cut", "MAX_ITEMS", "ELLIPSIS"]
