"""A projection's name (and event types) may be a class attribute, the class's own name
stands in when there is none, a passed name wins, and a bad name is still refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

import allsource_lab as asl


class Placed(asl.Projection):
    name = "placed-orders"
    event_types = ("order.placed",)

    def reset(self) -> None:
        self.count = 0

    def apply(self, event: asl.Event) -> None:
        self.count += 1

    def state(self, key: Any = None) -> int:
        return self.count


class Unnamed(asl.Projection):
    def reset(self) -> None:
        self.seen = 0

    def apply(self, event: asl.Event) -> None:
        self.seen += 1

    def state(self, key: Any = None) -> int:
        return self.seen


def test_a_class_attribute_name_names_the_projection_and_its_types_filter_it():
    store = asl.open()
    try:
        store.append("order.placed", "o-1", {})
        store.append("order.paid", "o-1", {})
        p = store.projections.add(Placed())
        assert p.name == "placed-orders"
        assert p.event_types == ("order.placed",)
        assert p.state() == 1
    finally:
        store.close()


def test_without_a_name_the_class_name_is_the_projection_name():
    projection = Unnamed()
    assert projection.name == "Unnamed"
    assert projection.event_types is None


def test_a_passed_name_and_event_types_win_over_the_class_attributes():
    projection = Placed("mine", event_types=["order.paid"])
    assert projection.name == "mine"
    assert projection.event_types == ("order.paid",)
    assert Placed(name="again").name == "again"


@pytest.mark.parametrize("bad", ["", 42, b"bytes"])
def test_a_bad_name_passed_or_in_the_class_is_refused(bad):
    with pytest.raises(asl.InvalidArgument, match="non-empty name"):
        Unnamed(bad)

    class BadlyNamed(Unnamed):
        name = bad

    with pytest.raises(asl.InvalidArgument, match=re.escape("set name = '...' in the class")):
        BadlyNamed()


def test_a_durable_projection_named_by_its_class_resumes_after_reopen(tmp_path):
    class Durable(Placed):
        def dump_state(self) -> Any:
            return self.count

        def load_state(self, data: Any) -> None:
            self.count = data
            self.resumed = True

    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.append("order.placed", "o-1", {})
        store.projections.add(Durable())
    with asl.open(path) as store:
        store.append("order.placed", "o-2", {})
        again = store.projections.add(Durable())
        assert getattr(again, "resumed", False), "the state kept under the name was not found"
        assert again.state() == 2
