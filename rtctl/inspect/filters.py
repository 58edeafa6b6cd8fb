"""``--filter`` expressions: which events the inspector shows.

The grammar is small on purpose::

    expr   := term ( ["and"] term )*          terms separated by spaces, all must hold
    term   := "errors"
            | field ("=" | "!=") value ("|" value)*
            | "size" ("=" | "!=" | ">" | ">=" | "<" | "<=") SIZE
    field  := "method" | "user" | "conn" | "dir" | "kind" | "room"

* ``method``, ``user``, ``conn`` and ``room`` take shell-style globs
  (``room.*``); a reply matches by its request's method, a batch by any of
  its methods. ``room`` is the room of a state frame (binary, or a
  ``state.patch`` notification): ``room=drift:*``.
* ``dir`` is ``in`` (client to gateway) or ``out``; ``kind`` is one of
  :data:`KINDS`; ``size`` is the message's bytes, with units (``1KB``, ``4KiB``).
* ``errors`` keeps error replies, messages that are not JSON-RPC, refused
  upgrades and closes other than 1000/1001.
* ``|`` separates alternatives: ``dir=in|out``, ``method=room.*|state.*``.

A term about something an event does not have is false for it: ``dir=in``
hides connects. The listener's own notices (subscribed, dropped) always show.
A bad expression is one :class:`ConfigError` sentence.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from rtctl.exceptions import ConfigError
from rtctl.inspect.pairing import Row
from rtctl.protocol.tap import (
    BINARY_KIND,
    IN,
    OUT,
    AuthRefused,
    Connected,
    Disconnected,
    Dropped,
    FrameSeen,
    Subscribed,
)
from rtctl.units import parse_size

__all__ = ["FIELDS", "KINDS", "Filter", "parse_filter"]

KINDS = ("request", "notification", "result", "error", "batch", "invalid", BINARY_KIND)
FIELDS = ("method", "user", "conn", "dir", "kind", "room", "size")
_NORMAL_CLOSES = frozenset({1000, 1001})
_TERM = re.compile(r"([a-z]+)(!=|>=|<=|=|>|<)(.*)")
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt,
    ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
_HELP = "try method=room.*, user=alice, dir=in, kind=error, errors or size>1KB"


def _is_error(row: Row) -> bool:
    event = row.event
    if isinstance(event, FrameSeen):
        return event.error is not None or event.kind == "invalid"
    if isinstance(event, Disconnected):
        return event.code not in _NORMAL_CLOSES
    return isinstance(event, AuthRefused)


def _values(row: Row, field: str) -> list[str] | None:
    """What ``field`` is for this row (several for a batch's methods); None if it has none."""
    event = row.event
    if field == "user":
        user = getattr(event, "user", None)
        return None if user is None else [user]
    if field == "conn":
        return [event.conn] if isinstance(event, Connected | Disconnected | FrameSeen) else None
    if field == "room":
        return None if row.state is None or row.state.room is None else [row.state.room]
    if not isinstance(event, FrameSeen):
        return None
    if field == "method":
        return row.method.split(",") if row.method else None
    return [event.direction if field == "dir" else event.kind]


@dataclass(frozen=True, slots=True)
class _Match:
    field: str
    patterns: tuple[str, ...]
    negate: bool

    def __call__(self, row: Row) -> bool:
        values = _values(row, self.field)
        if values is None:
            return False
        hit = any(fnmatchcase(v, p) for v in values for p in self.patterns)
        return hit != self.negate


@dataclass(frozen=True, slots=True)
class _Size:
    op: str
    bound: int

    def __call__(self, row: Row) -> bool:
        event = row.event
        return isinstance(event, FrameSeen) and _COMPARE[self.op](event.size, self.bound)


@dataclass(frozen=True)
class Filter:
    """A parsed expression; ``parse_filter("")`` shows everything."""

    text: str
    terms: tuple[Callable[[Row], bool], ...] = ()

    def matches(self, row: Row) -> bool:
        if isinstance(row.event, Subscribed | Dropped):
            return True
        return all(term(row) for term in self.terms)

    def __str__(self) -> str:
        return self.text


def _term(token: str) -> Callable[[Row], bool]:
    if token == "errors":
        return _is_error
    found = _TERM.fullmatch(token)
    if found is None:
        raise ConfigError(f"filter: {token!r} is not a term ({_HELP})")
    field, op, value = found.groups()
    if field not in FIELDS:
        raise ConfigError(f"filter: unknown field {field!r} in {token!r} "
                          f"(fields: {', '.join(FIELDS)}; or the word errors)")
    if not value:
        raise ConfigError(f"filter: {token!r} has no value after {op}")
    if field == "size":
        try:
            return _Size(op, parse_size(value))
        except ConfigError as exc:
            raise ConfigError(f"filter: {token!r}: {exc}") from None
    if op not in ("=", "!="):
        raise ConfigError(f"filter: {field} takes = or !=, not {op} (in {token!r})")
    patterns = tuple(value.split("|"))
    allowed = {"dir": (IN, OUT), "kind": KINDS}.get(field)
    wrong = [p for p in patterns if allowed is not None and p not in allowed]
    if wrong:
        raise ConfigError(f"filter: {field} is one of {', '.join(allowed or ())}, "
                          f"not {wrong[0]!r}")
    return _Match(field, patterns, negate=op == "!=")


def parse_filter(text: str) -> Filter:
    """Parse ``text`` (see the module docstring) or raise :class:`ConfigError`."""
    tokens = [t for t in text.split() if t.lower() != "and"]
    return Filter(text.strip(), tuple(_term(token) for token in tokens))
