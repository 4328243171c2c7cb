"""A target process for tests/test_objects.py: builds values, prints their ids and reprs, sleeps.

Runs unchanged under CPython 3.6 to 3.15.  The JSON line on stdout maps a
value's name to ``[id(value), repr(value)]``; ``"_extra"`` holds ids the
tests need for attribute checks, and ``"_version"`` the interpreter version.
Every value stays referenced from ``VALUES`` so its address stays valid.
"""
import json
import sys
import time
import types


def empty_cell():
    """An empty cell (``types.CellType()`` from 3.8; a never-assigned closure variable before)."""
    if hasattr(types, "CellType"):
        return types.CellType()
    if False:
        value = None
    return (lambda: value).__closure__[0]


class Plain:
    pass


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = "two"


class Outer:
    class Inner:
        pass


class MyDict(dict):
    pass


class MyList(list):
    pass


class MySet(set):
    pass


class MyFrozen(frozenset):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyStr(str):
    pass


class MyBytes(bytes):
    pass


class MyTuple(tuple):
    pass


class WithRepr:
    def __repr__(self):
        return "WithRepr()"


class Meta(type):
    pass


class WithMeta(metaclass=Meta):
    pass


def plain_function():
    pass


def outer_function():
    captured = 42

    def inner_function():
        return captured
    return inner_function


SOME_GLOBAL = "global value"

inf = float("inf")
nan = float("nan")
closure = outer_function()

recursive_list = [1]
recursive_list.append(recursive_list)
recursive_dict = {"a": 1}
recursive_dict["self"] = recursive_dict
tuple_holder = []
recursive_tuple = (tuple_holder, 2)
tuple_holder.append(recursive_tuple)
deleted_dict = {"k%d" % i: i for i in range(20)}
for i in range(0, 20, 3):
    del deleted_dict["k%d" % i]
deleted_set = set(range(50))
for i in range(0, 50, 2):
    deleted_set.discard(i)

VALUES = {
    "none": None, "true": True, "false": False, "ellipsis": Ellipsis, "notimplemented": NotImplemented,
    "int_0": 0, "int_1": 1, "int_m1": -1, "int_256": 256, "int_257": 257, "int_2_30": 2 ** 30,
    "int_2_30_m1": 2 ** 30 - 1, "int_m2_30": -(2 ** 30), "int_2_64": 2 ** 64, "int_big": 2 ** 200,
    "int_mbig": -(2 ** 200), "int_10_50": 10 ** 50, "int_myint": MyInt(7),
    "float_0": 0.0, "float_m0": -0.0, "float_01": 0.1, "float_1e300": 1e300, "float_inf": inf,
    "float_minf": -inf, "float_nan": nan, "float_tiny": 5e-324, "float_1e16": 1e16, "float_big": 123456789.0,
    "float_myfloat": MyFloat(2.5),
    "complex_1j": 1j, "complex_m1j": -1j, "complex_m0m0": complex(-0.0, -0.0), "complex_0m0": complex(0.0, -0.0),
    "complex_m0_1": complex(-0.0, 1), "complex_mix": complex(1.5, -2), "complex_infnan": complex(inf, nan),
    "str_empty": "", "str_hello": "hello", "str_single": "it's", "str_double": 'say "hi"',
    "str_both": "both ' and \"", "str_backslash": "back\\slash", "str_ctrl": "nl\n tab\t nul\x00 del\x7f cr\r",
    "str_latin1": "caf\xe9 \xa0 \xad \xff", "str_bmp": "\xe9\u03a9\u4e2d\u6587", "str_astral": "\U0001f600 ok",
    "str_zwsp": "a\u200bb", "str_surrogate": "\ud800", "str_surrogates": "\ud83d\ude00",
    "str_max": "\U0010ffff", "str_mixed": "a\u03a9\U0001f600'\"", "str_long": "x" * 500,
    "str_mystr": MyStr("sub'class"), "str_c1": "\x85\x9f",
    "bytes_empty": b"", "bytes_abc": b"abc", "bytes_single": b"it's", "bytes_double": b'"q"',
    "bytes_both": b"'\"", "bytes_escapes": b"\\\n\t\r\x00\x7f\x80\xff", "bytes_all": bytes(range(256)),
    "bytes_mybytes": MyBytes(b"sub"),
    "tuple_empty": (), "tuple_1": (1,), "tuple_2": (1, "a"), "tuple_nested": ((1,), ((),), [2, (3,)]),
    "tuple_mytuple": MyTuple((1, 2)),
    "list_empty": [], "list_1": [1], "list_mixed": [1, "a", None, 2.5, b"x", (1,), {"k": [1]}],
    "list_nested": [[[[1, [2]]]]], "list_mylist": MyList([1, 2]),
    "dict_empty": {}, "dict_str": {"a": 1, "b": "two"}, "dict_general": {1: "x", (1, 2): [3], None: {}},
    "dict_deleted": deleted_dict, "dict_big": {"key%d" % i: i for i in range(200)},
    "dict_mydict": MyDict(a=1, b=[2]),
    "set_empty": set(), "set_ints": {1, 2, 3}, "set_strs": {"a", "b", "c"}, "set_deleted": deleted_set,
    "set_myset": MySet({1, 2}), "set_myset_empty": MySet(),
    "frozenset_empty": frozenset(), "frozenset_1": frozenset({1}), "frozenset_strs": frozenset({"x", "y"}),
    "frozenset_myfrozen": MyFrozen({3}),
    "recursive_list": recursive_list, "recursive_dict": recursive_dict, "recursive_tuple": recursive_tuple,
    "instance_plain": Plain(), "instance_slotted": Slotted(), "instance_inner": Outer.Inner(),
    "instance_object": object(), "instance_withmeta": WithMeta(),
    "function_plain": plain_function, "function_closure": closure, "function_lambda": lambda: 0,
    "type_int": int, "type_plain": Plain, "type_inner": Outer.Inner, "type_ordered": __import__("collections").OrderedDict,
    "type_withmeta": WithMeta, "type_type": type, "type_object": object,
    "module_sys": sys, "module_json": __import__("json"), "module_main": sys.modules[__name__],
    "cell_full": closure.__closure__[0], "cell_empty": empty_cell(),
}

# Values whose repr we do not reproduce exactly (custom __repr__ / static types): kind checks only.
INEXACT = {"custom_repr": WithRepr(), "range": range(3)}

# Instances for attribute tests: one class each, because a class's shared keys
# (3.11+) are spoiled for later instances once one instance outgrows them.
class Few:
    pass


class Many:
    pass


class Materialised:
    pass


class Deleted:
    pass


class Initialised:
    def __init__(self):
        self.first = "first"
        self.second = 2


attrs_few = Few()
attrs_few.x = 10
attrs_few.name = "few"
attrs_many = Many()
for i in range(40):  # past the 30 shared keys: 3.13+ gives up inline values
    setattr(attrs_many, "attr%d" % i, i * 1000)
attrs_materialised = Materialised()
attrs_materialised.x = 11
attrs_materialised.y = "y"
attrs_materialised.__dict__  # materialise the dict (it shares the values on 3.11+)
attrs_materialised.z = 3.5
attrs_deleted = Deleted()
attrs_deleted.p = 1
attrs_deleted.q = 2
attrs_deleted.r = 3
del attrs_deleted.q
attrs_initialised = [Initialised() for _ in range(3)]
huge_int = 7 ** 20000  # about 16900 digits: the target's own repr() refuses it (3.8.14+)
attrs_dictsub = MyDict()
attrs_dictsub.extra = "on a dict subclass"
int_keyed = {10: "ten", 140000000000000: "big", "10": "str ten"}

EXTRA = {
    "attrs_few": [id(attrs_few), {"x": id(attrs_few.x), "name": id(attrs_few.name)}],
    "attrs_many": [id(attrs_many), {k: id(v) for k, v in attrs_many.__dict__.items()}],
    "attrs_deleted": [id(attrs_deleted), {"p": id(attrs_deleted.p), "r": id(attrs_deleted.r)}],
    "attrs_dictsub": [id(attrs_dictsub), {"extra": id(attrs_dictsub.extra)}],
    "attrs_initialised": [id(attrs_initialised[1]), {"first": id(attrs_initialised[1].first),
                                                      "second": id(attrs_initialised[1].second)}],
    "attrs_materialised": [id(attrs_materialised), {"x": id(attrs_materialised.x), "y": id(attrs_materialised.y),
                                                    "z": id(attrs_materialised.z)}],
    "huge_int": id(huge_int),
    "int_keyed": [id(int_keyed), {"10": id(int_keyed[10]), "140000000000000": id(int_keyed[140000000000000]),
                                  "'10'": id(int_keyed["10"])}],
    "module_main": [id(sys.modules[__name__]), {"SOME_GLOBAL": id(SOME_GLOBAL), "Plain": id(Plain)}],
    "inexact": {name: [id(v), repr(v)] for name, v in INEXACT.items()},
}

if __name__ == "__main__":
    out = {name: [id(value), repr(value)] for name, value in VALUES.items()}
    out["_extra"] = EXTRA
    out["_version"] = list(sys.version_info[:3])
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    while True:
        time.sleep(60)
