"""Tests for rtctl.units: durations, sizes and rates as people type them."""

from __future__ import annotations

from typing import Any

import pytest

from rtctl.exceptions import ConfigError
from rtctl.units import (
    format_duration,
    parse_call_rate,
    parse_duration,
    parse_rate,
    parse_size,
    parse_window,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("30s", 30.0),
        ("30 s", 30.0),
        (" 7s ", 7.0),
        ("10sec", 10.0),
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("2m", 120.0),
        ("2min", 120.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("250us", 250e-6),
        ("250µs", 250e-6),
        (".5s", 0.5),
        ("5.", 5.0),
        ("0", 0.0),
        ("15S", 15.0),
        ("100MS", 0.1),
        ("2M", 120.0),
        (30, 30.0),
        (0, 0.0),
        (2.5, 2.5),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    value = parse_duration(text)
    assert value == seconds
    assert type(value) is float


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "duration '' is not a number with a unit (try 30s, 500ms or 2m)"),
        ("abc", "duration 'abc' is not a number with a unit (try 30s, 500ms or 2m)"),
        ("s", "duration 's' is not a number with a unit (try 30s, 500ms or 2m)"),
        ("-1s", "duration '-1s' is not a number with a unit (try 30s, 500ms or 2m)"),
        ("1e3s", "duration '1e3s' is not a number with a unit (try 30s, 500ms or 2m)"),
        ("1,5s", "duration '1,5s' is not a number with a unit (try 30s, 500ms or 2m)"),
        ("5 parsecs", "duration '5 parsecs' has unknown unit 'parsecs' (use us, ms, s, m or h)"),
        ("3d", "duration '3d' has unknown unit 'd' (use us, ms, s, m or h)"),
        ("1KiB", "duration '1KiB' has unknown unit 'KiB' (use us, ms, s, m or h)"),
        (True, "duration True is not a number with a unit (try 30s, 500ms or 2m)"),
        ([1], "duration [1] is not a number with a unit (try 30s, 500ms or 2m)"),
        (None, "duration None is not a number with a unit (try 30s, 500ms or 2m)"),
    ],
)
def test_parse_duration_bad(text: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("65536", 65536),
        ("0", 0),
        ("64KiB", 65536),
        ("64kib", 65536),
        ("64KB", 64000),
        ("64 KB", 64000),
        ("64k", 65536),
        ("1MB", 1_000_000),
        ("1MiB", 1_048_576),
        ("1M", 1_048_576),
        ("1.5KiB", 1536),
        ("2GB", 2_000_000_000),
        ("1GiB", 1_073_741_824),
        ("512B", 512),
        ("512b", 512),
        (65536, 65536),
        (0, 0),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    value = parse_size(text)
    assert value == size
    assert type(value) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "size '' is not a number with a unit (try 65536, 64KiB or 1MB)"),
        ("big", "size 'big' is not a number with a unit (try 65536, 64KiB or 1MB)"),
        ("-1KB", "size '-1KB' is not a number with a unit (try 65536, 64KiB or 1MB)"),
        ("64KBs", "size '64KBs' has unknown unit 'KBs' "
                  "(use B, KB, KiB, MB, MiB, GB or GiB)"),
        ("1TB", "size '1TB' has unknown unit 'TB' (use B, KB, KiB, MB, MiB, GB or GiB)"),
        ("10s", "size '10s' has unknown unit 's' (use B, KB, KiB, MB, MiB, GB or GiB)"),
        (1.5, "size 1.5 is not a number with a unit (try 65536, 64KiB or 1MB)"),
        (True, "size True is not a number with a unit (try 65536, 64KiB or 1MB)"),
        ({"a": 1}, "size {'a': 1} is not a number with a unit (try 65536, 64KiB or 1MB)"),
    ],
)
def test_parse_size_bad(text: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_size(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "bits_per_second"),
    [
        ("1mbit", 1_000_000.0),
        ("1Mbit", 1_000_000.0),
        ("1.5mbit", 1_500_000.0),
        ("256kbit", 256_000.0),
        ("256kbps", 256_000.0),
        ("1gbit", 1_000_000_000.0),
        ("8bit", 8.0),
        ("100bps", 100.0),
        ("10mbps", 10_000_000.0),
        ("64KB/s", 512_000.0),
        ("64KiB/s", 524_288.0),
        ("1MB/s", 8_000_000.0),
        ("1MiB/s", 8_388_608.0),
        ("100B/s", 800.0),
        (" 2 mbit ", 2_000_000.0),
    ],
)
def test_parse_rate(text: str, bits_per_second: float) -> None:
    value = parse_rate(text)
    assert value == bits_per_second
    assert type(value) is float


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "rate 'fast' is not a number with a unit (try 1mbit, 256kbit or 64KB/s)"),
        ("", "rate '' is not a number with a unit (try 1mbit, 256kbit or 64KB/s)"),
        ("1000", "rate '1000' has unknown unit '' "
         "(use kbit, mbit, gbit or KB/s, KiB/s, MB/s, MiB/s)"),
        ("1m", "rate '1m' has unknown unit 'm' "
         "(use kbit, mbit, gbit or KB/s, KiB/s, MB/s, MiB/s)"),
        ("1tbit", "rate '1tbit' has unknown unit 'tbit' "
         "(use kbit, mbit, gbit or KB/s, KiB/s, MB/s, MiB/s)"),
        ("64KB", "rate '64KB' has unknown unit 'KB' "
         "(use kbit, mbit, gbit or KB/s, KiB/s, MB/s, MiB/s)"),
        ("32KiB", "rate '32KiB' has unknown unit 'KiB' "
         "(use kbit, mbit, gbit or KB/s, KiB/s, MB/s, MiB/s)"),
        (1000, "rate 1000 is not a number with a unit (try 1mbit, 256kbit or 64KB/s)"),
    ],
)
def test_parse_rate_bad(text: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rate(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.0005, "0.5ms"),
        (0.001, "1ms"),
        (0.25, "250ms"),
        (0.5, "500ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (15, "15s"),
        (15.0, "15s"),
        (90, "90s"),
        (119.5, "119.5s"),
        (120, "2m"),
        (150, "150s"),
        (180, "3m"),
        (3600, "60m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.25, 0.001, 1.5, 15.0, 90.0, 120.0, 3600.0])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("50/s", 50.0), ("50", 50.0), (" 50 / s ", 50.0), ("3000/min", 50.0), ("3000/m", 50.0),
     ("360/h", 0.1), ("0.5/sec", 0.5), (20, 20.0), (2.5, 2.5)],
)
def test_parse_call_rate(text: str | float, per_second: float) -> None:
    assert parse_call_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(
    ("text", "message"),
    [("0/s", "call rate '0/s' must be above 0"),
     ("-5/s", "call rate '-5/s' must be above 0"),
     ("inf/s", "call rate 'inf/s' must be above 0"),
     ("50/day", "call rate '50/day' is not a rate (try 50/s or 3000/min)"),
     ("fast", "call rate 'fast' is not a rate (try 50/s or 3000/min)"),
     (True, "call rate True is not a rate (try 50/s or 3000/min)")],
)
def test_parse_call_rate_bad(text: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_call_rate(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "window"),
    [("2ms", (0.002, None)), ("500us", (0.0005, None)), ("1s", (1.0, None)),
     ("16KiB", (None, 16384)), ("4KB", (None, 4000)), ("512B", (None, 512)),
     ("1MiB", (None, 1024 * 1024))],
)
def test_parse_window(text: str, window: tuple[float | None, int | None]) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["2", "2m", "2k", "2h"])
def test_a_window_that_could_be_a_time_or_a_size_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="is neither a time"):
        parse_window(text)
