"""Forgiving parsers for the units people type: durations, sizes and rates.

Durations accept ``30``, ``30s``, ``500ms``, ``2m``, ``1h``, ``250us``; sizes
accept ``65536``, ``64KiB``, ``64KB``, ``1MB``, ``1MiB``; rates accept
``1mbit``, ``256kbit``, ``64KB/s``; call rates accept ``50/s``, ``50``,
``3000/min``; a batching window is a time (``2ms``) or a size (``16KiB``). A
bad value raises :class:`ConfigError` with one clear sentence.
"""

from __future__ import annotations

import re

from rtctl.exceptions import ConfigError

__all__ = ["format_duration", "parse_call_rate", "parse_duration", "parse_rate", "parse_size",
           "parse_window"]

_NUMBER = r"(?P<num>\d+(?:\.\d*)?|\.\d+)\s*"

_DURATION_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "k": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "m": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
# Rates in bits per second: network people say "1mbit", storage people "64KB/s".
_RATE_UNITS = {
    "bit": 1,
    "bps": 1,
    "kbit": 1000,
    "kbps": 1000,
    "mbit": 1000**2,
    "mbps": 1000**2,
    "gbit": 1000**3,
    "gbps": 1000**3,
    "b/s": 8,
    "kb/s": 8 * 1000,
    "kib/s": 8 * 1024,
    "mb/s": 8 * 1000**2,
    "mib/s": 8 * 1024**2,
}


def _split(text: object, what: str, examples: str) -> tuple[float, str]:
    if not isinstance(text, str):  # a bool, list or table from a TOML file, say
        raise ConfigError(f"{what} {text!r} is not a number with a unit (try {examples})")
    match = re.fullmatch(_NUMBER + r"(?P<unit>[a-zA-Zµ/]*)", text.strip())
    if match is None:
        raise ConfigError(f"{what} {text!r} is not a number with a unit (try {examples})")
    return float(match["num"]), match["unit"]


def parse_duration(text: str | float) -> float:
    """Return seconds for ``30``, ``30s``, ``500ms``, ``2m`` (a bare number is seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value, unit = _split(text, "duration", "30s, 500ms or 2m")
    try:
        return value * _DURATION_UNITS[unit.lower() if unit != "µs" else unit]
    except KeyError:
        raise ConfigError(
            f"duration {text!r} has unknown unit {unit!r} (use us, ms, s, m or h)"
        ) from None


def parse_size(text: str | int) -> int:
    """Return bytes for ``65536``, ``64KiB``, ``64KB``, ``1MB`` (a bare number is bytes)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value, unit = _split(text, "size", "65536, 64KiB or 1MB")
    try:
        return int(value * _SIZE_UNITS[unit.lower()])
    except KeyError:
        raise ConfigError(
            f"size {text!r} has unknown unit {unit!r} (use B, KB, KiB, MB, MiB, GB or GiB)"
        ) from None


def parse_rate(text: str) -> float:
    """Return bits per second for ``1mbit``, ``256kbit``, ``64KB/s``."""
    value, unit = _split(text, "rate", "1mbit, 256kbit or 64KB/s")
    try:
        return value * _RATE_UNITS[unit.lower()]
    except KeyError:
        raise ConfigError(f"rate {text!r} has unknown unit {unit!r} "
                          "(use kbit, mbit, gbit or KB/s, KiB/s, MB/s, MiB/s)") from None


_PER = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 1 / 60, "min": 1 / 60, "h": 1 / 3600}


def parse_call_rate(text: str | float) -> float:
    """Return calls per second for ``50/s``, ``50`` (per second), ``3000/min``, ``100/h``."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, per = float(text), 1.0
    else:
        if not isinstance(text, str):
            raise ConfigError(f"call rate {text!r} is not a rate (try 50/s or 3000/min)")
        count, _, unit = text.strip().partition("/")
        try:
            value, per = float(count), _PER[unit.strip().lower()]
        except (KeyError, ValueError):
            raise ConfigError(f"call rate {text!r} is not a rate (try 50/s or 3000/min)") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"call rate {text!r} must be above 0")
    return value * per


_WINDOW_TIMES = ("us", "µs", "ms", "s")


def parse_window(text: str) -> tuple[float | None, int | None]:
    """A batching window: ``(seconds, None)`` for ``2ms``, ``(None, bytes)`` for ``16KiB``.

    A bare number is refused: whether 2 meant milliseconds or bytes is a guess.
    """
    _, unit = _split(text, "window", "2ms or 16KiB")
    if unit.lower() in _WINDOW_TIMES or unit == "µs":
        return parse_duration(text), None
    if unit and unit.lower() in _SIZE_UNITS and unit.lower() not in ("m", "k"):
        return None, parse_size(text)
    raise ConfigError(f"window {text!r} is neither a time (2ms, 500us) nor a size "
                      "(16KiB, 4KB)")


def format_duration(seconds: float) -> str:
    """Render seconds the way people read them: ``250ms``, ``15s``, ``2m``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 120 or seconds % 60:
        return f"{seconds:g}s"
    return f"{seconds / 60:g}m"
