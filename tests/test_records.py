"""layouts/records.py behaves as ``dataclasses`` does where the code relies on it, and the
one-shot commands' imports no longer pull in ``dataclasses`` (nor ``inspect`` with it)."""
from __future__ import annotations

import copy
import dataclasses
import pickle
import typing
from typing import ClassVar, List, Tuple

import pytest

from pythons import modules_loaded_after
from layouts import records
from layouts.records import FrozenInstanceError, dataclass, field



@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0
    tags: Tuple[str, ...] = field(default=(), repr=False)
    kind: ClassVar[str] = "point"


@dataclass
class Bag:
    name: str
    items: List[int] = field(default_factory=list)
    weight: float = field(default=1.0, compare=False)


@dataclass(frozen=True)
class Labelled:
    label: str = "?"


@dataclass(frozen=True, slots=True)
class Point3(Point):
    z: int = 0


# the same declarations with the standard module: the behaviour to match
@dataclasses.dataclass(frozen=True)
class StdPoint:
    x: int
    y: int = 0
    tags: Tuple[str, ...] = dataclasses.field(default=(), repr=False)


def test_init_defaults_repr_eq_hash_match_dataclasses():
    p = Point(1, 2, ("a",))
    assert (p.x, p.y, p.tags) == (1, 2, ("a",))
    assert Point(1) == Point(1, 0, ()) and Point(1) != Point(2)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert repr(p) == repr(StdPoint(1, 2, ("a",))).replace("StdPoint", "Point")
    assert Point.kind == "point" and [f.name for f in records.fields(Point)] == ["x", "y", "tags"]
    assert not hasattr(p, "__dict__")  # slotted
    assert Point(1).__eq__(StdPoint(1)) is NotImplemented
    with pytest.raises(TypeError):
        Point()


def test_frozen_instances_refuse_changes():
    p = Point(1)
    for action in (lambda: setattr(p, "x", 3), lambda: delattr(p, "x"), lambda: setattr(p, "other", 1)):
        with pytest.raises(FrozenInstanceError):
            action()
    assert issubclass(FrozenInstanceError, AttributeError)


def test_mutable_records_factories_compare_and_hash():
    a, b = Bag("a"), Bag("a")
    a.items.append(1)
    assert b.items == [] and a.items is not b.items  # a new list per instance
    assert Bag("a", [1], 5.0) == a  # weight is not compared
    a.name = "renamed"
    assert a.name == "renamed"
    with pytest.raises(TypeError):
        hash(a)  # compared by value and mutable: unhashable, as with dataclasses


def test_inheritance_fields_first_from_the_base():
    p = Point3(1, 2, (), 3)
    assert [f.name for f in records.fields(p)] == ["x", "y", "tags", "z"]
    assert p == Point3(1, 2, (), 3) and p != Point3(1, 2, (), 4)
    assert Labelled().label == "?"


def test_replace_asdict_is_dataclass_copy_and_pickle():
    p = Point(1, 2, ("t",))
    assert records.replace(p, y=5) == Point(1, 5, ("t",))
    with pytest.raises(TypeError):
        records.replace(p, nope=1)
    assert records.asdict(Bag("b", [1, 2])) == {"name": "b", "items": [1, 2], "weight": 1.0}
    assert records.asdict(p) == dataclasses.asdict(StdPoint(1, 2, ("t",)))
    assert records.is_dataclass(p) and records.is_dataclass(Point) and not records.is_dataclass(1)
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(p)) == p


class Row(records.NamedRow):
    name: str
    size: int
    flags: int = 0


class StdRow(typing.NamedTuple):
    name: str
    size: int
    flags: int = 0


def test_named_rows_behave_as_named_tuples():
    """``NamedRow`` stands in for ``typing.NamedTuple``: the same values, names, defaults,
    equality, hashing, unpacking, ``_replace``/``_asdict``, pickling; read-only fields."""
    for args, kwargs in ((("a", 1), {}), (("a", 1, 4), {}), (("a",), {"size": 2}), ((), {"name": "b", "size": 3})):
        row, std = Row(*args, **kwargs), StdRow(*args, **kwargs)
        assert tuple(row) == tuple(std) and row == std and hash(row) == hash(std)
        assert (row.name, row.size, row.flags) == (std.name, std.size, std.flags)
        assert repr(row) == repr(std).replace("StdRow", "Row")
        assert row._asdict() == std._asdict() and row._replace(size=9) == std._replace(size=9)
        assert pickle.loads(pickle.dumps(row)) == row and type(pickle.loads(pickle.dumps(row))) is Row
        assert copy.copy(row) == row and copy.deepcopy(row) == row
    assert Row._fields == StdRow._fields and Row._field_defaults == StdRow._field_defaults
    name, size, flags = Row("c", 5)
    assert (name, size, flags) == ("c", 5, 0) and not hasattr(Row("c", 5), "__dict__")
    with pytest.raises(AttributeError):
        Row("c", 5).size = 6
    for bad_args, bad_kwargs in (((), {}), (("a", 1, 2, 3), {}), (("a", 1), {"nope": 1}), (("a", 1), {"name": "x"})):
        with pytest.raises(TypeError):
            Row(*bad_args, **bad_kwargs)
    with pytest.raises(TypeError):
        class Bad(records.NamedRow):
            a: int = 0
            b: int


def test_one_shot_imports_leave_dataclasses_out():
    """Nor ``typing``: our annotations are never evaluated (``from __future__ import
    annotations``, names under ``TYPE_CHECKING``), and the module costs ~3 ms of start-up."""
    code = ("import repl.cli, repl.dispatch, repl.session, repl.commands.dump, snapshot, "
            "snapshot.target, snapshot.model, snapshot.process.live, snapshot.elf, snapshot.binary")
    assert modules_loaded_after(code, ("dataclasses", "inspect", "typing")) == []


def test_methods_come_from_the_code_store():
    """A class whose generated source is in ``records.CODE`` is not compiled again (what the
    front end's start-up cache relies on), and behaves the same."""
    def declare(default):
        @dataclass(frozen=True)
        class Stored:
            a: int
            b: str = default
        return Stored

    before = len(records.COMPILED)
    first = declare("x")
    assert len(records.COMPILED) == before + 1
    key = records.COMPILED[-1]
    assert key in records.CODE and "Stored" in key[0]
    again = declare("y")              # the same source (defaults are not in it): no compile
    assert len(records.COMPILED) == before + 1
    assert again(1) == again(1, "y") and first(1).b == "x" and again(2).b == "y"
    with pytest.raises(FrozenInstanceError):
        again(1).a = 2
