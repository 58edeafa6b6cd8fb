"""Named network profiles: TOML files in ``profiles/``, each citing where its numbers come from.

A profile holds the same settings as the flags (see :mod:`simulator.spec`) plus
``description`` and ``source``, and may add time-varying ``[[phases]]`` (each
with ``at``) and ``[[outages]]`` (``at``, ``duration``, ``kind``)::

    description = "Wi-Fi, then a handover to LTE with a 3 s gap"
    source = "..."
    latency = "20ms"
    [[phases]]
    at = "20s"
    latency = "50ms"

Flags given with ``--profile`` apply on top of the profile.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtctl.exceptions import ConfigError
from rtctl.units import parse_duration
from simulator.scenario import Conditions, Outage, Phase, parse_outage
from simulator.spec import LinkSpec, apply_settings

__all__ = ["Profile", "list_profiles", "load_profile", "profile_dirs"]

_META = ("description", "source", "phases", "outages")


@dataclass(frozen=True)
class Profile:
    """A parsed profile file."""

    name: str
    description: str
    source: str
    settings: dict[str, Any]
    phases: tuple[Phase, ...] = ()
    outages: tuple[Outage, ...] = ()
    path: Path = field(default=Path())

    def conditions(self, overrides: dict[str, Any] | None = None) -> Conditions:
        """Live conditions starting from this profile, with ``overrides`` on top."""
        base = apply_settings(apply_settings(LinkSpec(), self.settings), overrides or {})
        return Conditions(base, phases=self.phases, outages=list(self.outages))


def profile_dirs() -> list[Path]:
    """Where named profiles are looked up: the source tree, then the installed share dir."""
    return [Path(__file__).resolve().parent.parent / "profiles",
            Path(sys.prefix) / "share" / "rtctl" / "profiles"]


def _parse(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"profile {path}: {exc}") from None
    settings = {k: v for k, v in data.items() if k not in _META}
    try:
        phases = tuple(Phase(parse_duration(p.pop("at")), p) for p in data.get("phases", []))
        outages = tuple(parse_outage(f"{o['duration']}@{o.get('at', 0)},"
                                     f"{o.get('kind', 'blackhole')}")
                        for o in data.get("outages", []))
        profile = Profile(path.stem, str(data.get("description", "")),
                          str(data.get("source", "")), settings, phases, outages, path)
        profile.conditions()  # every value checked now
    except (ConfigError, KeyError) as exc:
        raise ConfigError(f"profile {path.name}: {exc}") from None
    return profile


def list_profiles() -> list[Profile]:
    """Every named profile, first directory winning on equal names, sorted by name."""
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        for path in sorted(directory.glob("*.toml")):
            found.setdefault(path.stem, path)
    return [_parse(found[name]) for name in sorted(found)]


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (``slow-3g``) or by file path (``./mine.toml``)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"profile file {name_or_path} does not exist")
        return _parse(path)
    for directory in profile_dirs():
        candidate = directory / f"{name_or_path}.toml"
        if candidate.is_file():
            return _parse(candidate)
    names = ", ".join(p.name for p in list_profiles())
    raise ConfigError(f"no profile named {name_or_path!r} (known: {names})")
