"""What the link is like at a given moment, for a given client: phases, outages, rules.

:class:`Conditions` is the proxy's live, sans-I/O state. Times are seconds since
the proxy started (``elapsed``); the proxy passes them in. The spec one client
sees at ``elapsed`` is built in layers:

1. the base spec (flags or a profile's top level, changed live by ``set``);
2. the current :class:`Phase` of a time-varying scenario on top (a later phase
   replaces an earlier one; e.g. Wi-Fi, then LTE from t = 20 s);
3. the first :class:`Rule` matching the client (its address or its token's
   user) on top of that: one player on a bad link, the others clean.

:class:`Outage` windows apply to everyone: ``blackhole`` drops all traffic
inside the window, ``reset`` closes every connection at its start and refuses
new ones until its end (a cable pulled out).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rtctl.exceptions import ConfigError
from rtctl.units import format_duration, parse_duration
from simulator.spec import LinkSpec, apply_settings

__all__ = ["OUTAGE_KINDS", "Client", "Conditions", "Outage", "Phase", "Rule", "parse_outage"]

OUTAGE_KINDS = ("blackhole", "reset")


@dataclass(frozen=True)
class Client:
    """Who is on the other end of a proxied connection."""

    address: str  # host, without the port
    port: int = 0
    user: str | None = None  # the `sub` of the token it connected with, if any


@dataclass(frozen=True)
class Outage:
    """No traffic for ``duration`` seconds from ``start`` (seconds since the proxy started)."""

    start: float
    duration: float
    kind: str = "blackhole"

    @property
    def end(self) -> float:
        return self.start + self.duration

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start, "duration": self.duration, "kind": self.kind}


def parse_outage(text: str, *, now: float = 0.0) -> Outage:
    """``"5s@30s"`` (5 s at t = 30 s), ``"3s@20s,reset"``, or ``"5s"`` (from ``now``)."""
    spec, _, kind = text.partition(",")
    duration, _, start = spec.partition("@")
    kind = kind.strip() or "blackhole"
    if kind not in OUTAGE_KINDS:
        raise ConfigError(f"outage {text!r}: kind must be blackhole or reset, not {kind!r}")
    seconds = parse_duration(duration)
    if seconds <= 0:
        raise ConfigError(f"outage {text!r}: the duration must be above 0")
    return Outage(parse_duration(start) if start else now, seconds, kind)


@dataclass(frozen=True)
class Phase:
    """From ``at`` seconds on, ``settings`` apply on top of the base spec."""

    at: float
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    """Settings for the clients it matches: by address (host) and/or by token user."""

    settings: Mapping[str, Any]
    address: str | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        if self.address is None and self.user is None:
            raise ConfigError("a rule needs an address or a user to match")
        apply_settings(LinkSpec(), self.settings)  # refuse bad values now

    def matches(self, client: Client) -> bool:
        return ((self.address is None or self.address in (client.address,
                                                           f"{client.address}:{client.port}"))
                and (self.user is None or self.user == client.user))

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "user": self.user, "settings": dict(self.settings)}


@dataclass
class Conditions:
    """The proxy's live impairments; every change bumps ``version``."""

    base: LinkSpec = field(default_factory=LinkSpec)
    phases: Sequence[Phase] = ()
    outages: list[Outage] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    version: int = 0

    def __post_init__(self) -> None:
        self.phases = sorted(self.phases, key=lambda p: p.at)
        for phase in self.phases:
            apply_settings(self.base, phase.settings)  # refuse bad values now
        self._starts = [p.at for p in self.phases]

    def phase_index(self, elapsed: float) -> int:
        """-1 before the first phase, else the index of the phase in force."""
        return bisect.bisect_right(self._starts, elapsed) - 1

    def key(self, elapsed: float) -> tuple[int, int]:
        """Changes whenever :meth:`spec_for` may answer differently."""
        return self.version, self.phase_index(elapsed)

    def spec_for(self, client: Client | None, elapsed: float) -> LinkSpec:
        spec = self.base
        index = self.phase_index(elapsed)
        if index >= 0:
            spec = apply_settings(spec, self.phases[index].settings)
        rule = next((r for r in self.rules if client and r.matches(client)), None)
        return apply_settings(spec, rule.settings) if rule else spec

    def blackholes(self) -> list[tuple[float, float]]:
        return [(o.start, o.end) for o in self.outages if o.kind == "blackhole"]

    def resetting(self, elapsed: float) -> bool:
        """True inside a ``reset`` outage: new connections are refused."""
        return any(o.kind == "reset" and o.start <= elapsed < o.end for o in self.outages)

    # -- changes (the control API) ------------------------------------------

    def update(self, settings: Mapping[str, Any], *, replace: bool = False) -> None:
        """Apply ``settings`` on top of the base spec (or on a clean one with ``replace``)."""
        self.base = apply_settings(LinkSpec() if replace else self.base, settings)
        self.version += 1

    def add_outage(self, outage: Outage) -> None:
        self.outages.append(outage)
        self.version += 1

    def end_outages(self, elapsed: float) -> None:
        """Cut short every outage in force at ``elapsed`` (a lag switch let go)."""
        self.outages = [Outage(o.start, elapsed - o.start, o.kind)
                        if o.start <= elapsed < o.end else o for o in self.outages]
        self.version += 1

    def set_rules(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self.version += 1

    def as_json(self, elapsed: float) -> dict[str, Any]:
        index = self.phase_index(elapsed)
        return {
            "elapsed": elapsed,
            "base": self.base.as_json(),
            "describe": self.base.describe(),
            "phase": None if index < 0 else {"index": index, "at": self.phases[index].at},
            "current": self.spec_for(None, elapsed).as_json(),
            "outages": [o.as_json() for o in self.outages if o.end > elapsed],
            "rules": [r.as_json() for r in self.rules],
            "version": self.version,
        }

    def banner(self) -> list[str]:
        """Lines describing the configuration, for the start banner."""
        lines = [f"impairments: {self.base.describe()}"]
        lines += [f"  phase at {format_duration(p.at)}: "
                  f"{apply_settings(self.base, p.settings).describe()}" for p in self.phases]
        lines += [f"  outage: {o.kind} {format_duration(o.duration)} at "
                  f"{format_duration(o.start)}" for o in self.outages]
        lines += [f"  rule {r.user or r.address}: "
                  f"{apply_settings(self.base, r.settings).describe()}" for r in self.rules]
        return lines
