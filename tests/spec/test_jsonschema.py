"""rtctl.spec.jsonschema: each annotation kind, held to what JSON values it admits."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

import pytest
from jsonschema import Draft202012Validator, ValidationError

from rtctl.params import checker
from rtctl.protocol.streams import POSITION_SCHEMA, PositionParam, parse_position
from rtctl.spec.jsonschema import schema
from rtctl.state.hlc import Stamp, StampParam


def admits(annotation: Any, value: Any) -> bool:
    found = schema(annotation)
    Draft202012Validator.check_schema(found)
    return Draft202012Validator(found).is_valid(value)


@pytest.mark.parametrize(("annotation", "good", "bad"), [
    (int, 3, True),  # JSON keeps true and 1 apart
    (int, -1, 1.5),
    (float, 1.5, "1.5"),
    (float, 2, None),  # an integer is a number
    (str, "x", 1),
    (bool, False, 0),
    (None, None, 0),
    (type(None), None, False),
    (list, [1, "a"], {}),
    (list[int], [1, 2], [1, "2"]),
    (dict, {"a": 1}, []),
    (dict[str, int], {"a": 1}, {"a": "1"}),
    (Literal["a", "b"], "b", "c"),
    (Literal["only"], "only", "other"),
    (Literal["a", None], None, "c"),
    (int | None, None, "1"),
    (str | list[str], ["a"], [1]),
])
def test_each_kind_admits_its_values_and_refuses_others(annotation: Any, good: Any,
                                                        bad: Any) -> None:
    assert admits(annotation, good)
    assert not admits(annotation, bad)


@pytest.mark.parametrize("annotation", [Any, object, int | Any])
def test_anything_goes_where_any_is(annotation: Any) -> None:
    assert schema(annotation) == {}
    for value in (1, "x", None, [1], {"a": [True]}):
        assert admits(annotation, value)


def test_an_object_of_anything_is_any_object() -> None:
    assert schema(dict[str, Any]) == {"type": "object"}
    assert admits(dict[str, Any], {"a": [True], "b": None})
    assert not admits(dict[str, Any], [1])


class Inner(TypedDict):
    n: int


class Outer(TypedDict):
    name: str
    inner: Inner
    note: NotRequired[str | None]


class Loose(TypedDict, total=False):
    a: int
    b: Required[str]


def test_a_typeddict_is_a_closed_object_with_its_required_members() -> None:
    assert admits(Outer, {"name": "x", "inner": {"n": 1}})
    assert admits(Outer, {"name": "x", "inner": {"n": 1}, "note": None})
    assert not admits(Outer, {"name": "x"})  # inner is required
    assert not admits(Outer, {"name": "x", "inner": {"n": 1}, "extra": 1})  # drift caught
    assert not admits(Outer, {"name": "x", "inner": {"n": 1, "m": 2}})  # nested too
    # NotRequired under `from __future__ import annotations` (this module) is optional,
    # though Python 3.11 lists it in __required_keys__.
    assert schema(Outer)["required"] == ["name", "inner"]
    assert schema(Loose)["required"] == ["b"]


def test_the_functional_form_carries_keyword_names() -> None:
    from rtctl.services.room_wire import RoomMessage

    body = {"room": "r", "from": "alice", "data": None, "offset": 1, "epoch": "e"}
    assert admits(RoomMessage, body)
    with pytest.raises(ValidationError):
        Draft202012Validator(schema(RoomMessage)).validate({**body, "sender": "alice"})


def test_an_annotation_json_cannot_describe_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"no JSON Schema for .*set"):
        schema(set[int])


def test_an_integer_says_what_json_schema_cannot() -> None:
    # JSON Schema's integer takes 1.0 and 1e300; the Router refuses both (rtctl.params),
    # so the schema carries the rule in words (docs/protocol.md §1 and §4 state it).
    assert Draft202012Validator(schema(int)).is_valid(1.0)
    assert schema(int)["$comment"] == "no fraction or exponent (§1)"


def _parses(parse: Any, value: Any) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("annotation", "parse"), [
    (PositionParam, parse_position),
    (StampParam, Stamp.from_json),
])
@pytest.mark.parametrize("value", [
    {"offset": 0, "epoch": "e"}, {"offset": 7, "epoch": "x" * 64}, {"offset": 1, "epoch": ""},
    {"offset": 1, "epoch": "x" * 65}, {"offset": -1, "epoch": "e"},
    {"offset": True, "epoch": "e"}, {"offset": 1}, {"offset": 1, "epoch": "e", "more": 1},
    {"offset": 1, "epoch": 5}, [1, 0, "node"], [0, 0, ""], [1, 0], [1, 0, "n", 2], [-1, 0, "n"],
    [1, True, "n"], [1, 0, 5], "1,0,n", None, 3,
])
def test_a_parsed_param_publishes_exactly_what_its_parser_takes(
        annotation: Any, parse: Any, value: Any) -> None:
    # Binding lets anything through (Any): the handler's parser decides, and says why.
    assert checker(annotation) is None
    assert admits(annotation, value) == _parses(parse, value)


def test_an_explicit_schema_is_published_under_a_union() -> None:
    assert schema(PositionParam | None) == {"anyOf": [POSITION_SCHEMA, {"type": "null"}]}
    assert schema(Annotated[int, "a note"]) == schema(int)  # other metadata changes nothing
