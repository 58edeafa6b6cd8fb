"""What to do to traffic, as small frozen values, and the one parser that builds them.

A :class:`DirectionSpec` describes one direction of a link; a :class:`LinkSpec`
holds both: ``up`` is client → server, ``down`` server → client. Flags, profile
files and the control API all go through :func:`apply_settings`, which reads a
mapping of forgiving values (``"5%"``, ``0.05``, ``"50ms"``, ``"1mbit"``):

* plain keys apply to both directions; ``up_KEY``/``down_KEY`` (or ``up``/``down``
  tables) to one;
* ``latency`` is one way and applies to each direction, so the round trip grows
  by twice it; ``rtt`` sets the round trip directly (half of it each way);
* aliases game developers know: ``delay``, ``rate``, Unreal's ``PktLag`` /
  ``PktLagVariance`` (bare numbers in ms) and ``PktLoss`` / ``PktDup`` (bare
  numbers in percent).

A bad value raises :class:`rtctl.exceptions.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rtctl.exceptions import ConfigError
from rtctl.units import format_duration, parse_duration, parse_rate, parse_size
from simulator.models import DISTRIBUTIONS

__all__ = ["DirectionSpec", "LinkSpec", "apply_settings", "parse_fraction"]

_ALIASES = {"delay": "latency", "rate": "bandwidth", "pktlag": "latency",
            "pktlagvariance": "jitter", "pktloss": "loss", "pktdup": "duplicate"}
_BARE_MS = {"pktlag", "pktlagvariance"}  # Unreal's console variables count in ms
_BARE_PERCENT = {"pktloss", "pktdup"}  # ... and in percent


@dataclass(frozen=True)
class DirectionSpec:
    """The impairments of one direction; the defaults impair nothing."""

    latency: float = 0.0  # seconds, one way
    jitter: float = 0.0  # seconds: ± range (uniform) or sigma (the others)
    distribution: str = "uniform"
    correlation: float = 0.0
    loss: float = 0.0
    gemodel: tuple[float, float, float, float] | None = None  # p, r, 1-h, 1-k
    bandwidth: float | None = None  # bit/s
    queue: int | None = None  # bytes waiting for bandwidth before tail drop
    reorder: float = 0.0
    duplicate: float = 0.0

    @property
    def clean(self) -> bool:
        """True when nothing is configured: messages pass straight through."""
        return self == _CLEAN

    def describe(self) -> str:
        """One human line: ``latency 50ms ± 10ms (normal), loss 5%, bandwidth 1mbit``."""
        parts: list[str] = []
        if self.latency or self.jitter:
            jitter = (f" ± {format_duration(self.jitter)} ({self.distribution})"
                      if self.jitter else "")
            corr = f" corr {self.correlation:.0%}" if self.correlation else ""
            parts.append(f"latency {format_duration(self.latency)}{jitter}{corr}")
        if self.gemodel:
            parts.append("loss gemodel " + " ".join(f"{x:.3g}" for x in self.gemodel))
        elif self.loss:
            parts.append(f"loss {self.loss * 100:g}%")
        if self.bandwidth:
            parts.append(f"bandwidth {_format_rate(self.bandwidth)}"
                         + (f" queue {self.queue} B" if self.queue else ""))
        for name in ("reorder", "duplicate"):
            if value := getattr(self, name):
                parts.append(f"{name} {value * 100:g}%")
        return ", ".join(parts) or "none"

    def as_json(self) -> dict[str, Any]:
        """Plain numbers in SI units (seconds, bit/s, bytes, fractions)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DirectionSpec:
        """The inverse of :meth:`as_json`."""
        gemodel = data.get("gemodel")
        return cls(**{**data, "gemodel": tuple(gemodel) if gemodel else None})


_CLEAN = DirectionSpec()


@dataclass(frozen=True)
class LinkSpec:
    """Both directions: ``up`` (client → server) and ``down`` (server → client)."""

    up: DirectionSpec = field(default_factory=DirectionSpec)
    down: DirectionSpec = field(default_factory=DirectionSpec)

    @property
    def clean(self) -> bool:
        return self.up.clean and self.down.clean

    def added_rtt(self) -> float:
        """Seconds a round trip gains: latency is one way, so both directions add theirs."""
        return self.up.latency + self.down.latency

    def describe(self) -> str:
        if self.up == self.down:
            return self.up.describe()
        return f"up: {self.up.describe()}; down: {self.down.describe()}"

    def as_json(self) -> dict[str, Any]:
        return {"up": self.up.as_json(), "down": self.down.as_json()}


def _format_rate(bits: float) -> str:
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits >= scale:
            return f"{bits / scale:g}{unit}"
    return f"{bits:g}bit"


def parse_fraction(value: object, what: str = "probability", *, bare_percent: bool = False
                   ) -> float:
    """``"5%"``, ``"0.05"`` or ``0.05`` → 0.05; a bare number above 1 is refused as ambiguous."""
    text = str(value).strip() if isinstance(value, str | int | float) else None
    if text is None or isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a fraction (try 5% or 0.05)")
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)", text)
    if match is None:
        raise ConfigError(f"{what} {value!r} is not a fraction (try 5% or 0.05)")
    number = float(match[1])
    fraction = number / 100 if match[2] or bare_percent else number
    if fraction > 1:
        raise ConfigError(f"{what} {value!r} is more than 100% (write 5% or 0.05 for five percent)")
    return fraction


def _gemodel(value: object) -> tuple[float, float, float, float]:
    words = value.split() if isinstance(value, str) else value
    if not isinstance(words, list | tuple) or not 1 <= len(words) <= 4:
        raise ConfigError(f"gemodel {value!r} must be 'p [r [1-h [1-k]]]', e.g. '1% 30%'")
    p, *rest = (parse_fraction(w, "gemodel value") for w in words)
    defaults = [1 - p, 1.0, 0.0]  # netem: r = 1 - p, 1-h = 100%, 1-k = 0%
    r, loss_bad, loss_good = [*rest, *defaults[len(rest):]]
    if p <= 0 or r <= 0:
        raise ConfigError(f"gemodel {value!r}: p and r must be above 0")
    return p, r, loss_bad, loss_good


def _value(key: str, alias: str, value: Any) -> Any:
    """Parse one setting's value; ``key`` is canonical, ``alias`` what the user wrote."""
    bare = isinstance(value, int | float) and not isinstance(value, bool)
    if key in ("latency", "jitter"):
        seconds = (value / 1000 if bare and alias in _BARE_MS else parse_duration(value))
        if seconds < 0:
            raise ConfigError(f"{alias} must not be negative")
        return seconds
    if key in ("loss", "reorder", "duplicate", "correlation"):
        return parse_fraction(value, alias, bare_percent=alias in _BARE_PERCENT)
    if key == "bandwidth":
        if value in (None, "", 0, "0", "none", "off"):
            return None
        return float(value) if bare else parse_rate(value)
    if key == "queue":
        return parse_size(value)
    if key == "gemodel":
        return None if value in (None, "", "off", "none") else _gemodel(value)
    if key == "distribution":
        if value not in DISTRIBUTIONS:
            raise ConfigError(f"distribution {value!r} is not one of {', '.join(DISTRIBUTIONS)}")
        return value
    raise ConfigError(f"unknown impairment {alias!r}")


def _canonical(name: str) -> str:
    lowered = name.lower().replace("-", "_")
    return _ALIASES.get(lowered, lowered)


def _flatten(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{"up": {"loss": x}}`` → ``{"up_loss": x}``; other keys unchanged."""
    flat: dict[str, Any] = {}
    for name, value in settings.items():
        if name in ("up", "down") and isinstance(value, Mapping):
            flat.update({f"{name}_{key}": inner for key, inner in value.items()})
        else:
            flat[name] = value
    return flat


def apply_settings(spec: LinkSpec, settings: Mapping[str, Any]) -> LinkSpec:
    """``spec`` with ``settings`` applied on top; unmentioned fields keep their values.

    ``None`` values are skipped, so CLI options that were not given can be passed
    as they are.
    """
    changes: dict[str, dict[str, Any]] = {"up": {}, "down": {}}
    for name, value in _flatten(settings).items():
        if value is None:
            continue
        direction, sep, rest = name.replace("-", "_").partition("_")
        if not sep or direction not in changes:
            direction, rest = "", name
        key = _canonical(rest)
        if key == "rtt":
            key, parsed = "latency", parse_duration(value) / 2
        else:
            parsed = _value(key, rest.lower(), value)
        for side, target in changes.items():
            if direction in ("", side):
                target[key] = parsed
    return LinkSpec(dataclasses.replace(spec.up, **changes["up"]),
                    dataclasses.replace(spec.down, **changes["down"]))
