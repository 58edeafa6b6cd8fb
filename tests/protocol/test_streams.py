"""Stream positions as the wire carries them (rtctl.protocol.streams)."""

from __future__ import annotations

from typing import Any

import pytest

from rtctl.protocol.streams import StreamPosition, parse_position, position_in


def test_a_position_reads_back_from_its_json() -> None:
    position = StreamPosition(7, "Xq3v9aQw")
    assert parse_position(position.to_json()) == position


def test_a_position_is_found_inside_a_larger_object() -> None:
    reply = {"members": ["alice"], "total": 1, "offset": 3, "epoch": "e1", "replayed": 2}
    assert position_in(reply) == StreamPosition(3, "e1")


@pytest.mark.parametrize("value", [
    None, [], {"offset": 1}, {"offset": 1, "epoch": "e", "extra": 0},
    {"offset": -1, "epoch": "e"},
    {"offset": True, "epoch": "e"}, {"offset": 1.0, "epoch": "e"}, {"offset": 1, "epoch": ""},
    {"offset": 1, "epoch": "x" * 65},
])
def test_a_malformed_position_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match=r"'offset'|'epoch'|an object"):
        parse_position(value)


@pytest.mark.parametrize("value", [None, "3", {"offset": 3}, {"epoch": "e"}])
def test_an_object_without_a_position_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match=r"'offset'|'epoch'|an object"):
        position_in(value)
