"""Recordings round-trip exactly; a bad line is named with its number."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtctl.exceptions import ConfigError
from rtctl.inspect.recorder import Recorder, read_recording
from tests.gateway.test_tap import EVENTS


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with Recorder(path) as recorder:
        for event in EVENTS:
            recorder.write(event)
    assert recorder.events == len(EVENTS)
    assert len(path.read_text().splitlines()) == len(EVENTS)
    assert list(read_recording(path)) == EVENTS


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"event":"subscribed","t_us":1,"queue":2}\n\n{"event":"frame"}\n')
    events = read_recording(path)
    assert next(events).t_us == 1
    with pytest.raises(ConfigError, match=r"r\.jsonl:3: not a tap event \(frame event without"):
        next(events)


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the recording"):
        list(read_recording(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="cannot write the recording"):
        Recorder(tmp_path / "no" / "such" / "dir.jsonl")
