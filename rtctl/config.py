"""Gateway configuration: small frozen objects with ``DEFAULT_*`` constants.

Library users and tests build a config in one line::

    GatewayConfig(auth=AuthConfig(secret="s"), limits=Limits(max_connections=100))

The CLI builds one from ``--config FILE.toml`` and its flags (flags win). The
file has the sections ``[server]``, ``[auth]``, ``[limits]``, ``[heartbeat]``,
``[recovery]`` and ``[routing]``; ``docs/api.md`` lists every key. Durations and sizes accept
units (``15s``, ``64KiB``). Only the CLI reads the environment.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rtctl.backends.base import DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL, HistoryLimits
from rtctl.exceptions import ConfigError
from rtctl.gateway.auth import AuthConfig
from rtctl.units import parse_call_rate, parse_duration, parse_rate, parse_size, parse_window

__all__ = [
    "DEFAULT_DRAIN",
    "DEFAULT_GRACE",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_USER",
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_OUTBOX_BYTES",
    "DEFAULT_PATH",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_SLOW_CONSUMER_GRACE",
    "DEFAULT_TOKEN_TTL",
    "DEFAULT_TRANSPORT",
    "DEFAULT_WRITE_TIMEOUT",
    "MAX_PORT",
    "TRANSPORTS",
    "GatewayConfig",
    "Heartbeat",
    "Limits",
    "Recovery",
    "Routing",
    "load_config_file",
    "merge",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_PATH = "/ws"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024  # as Centrifugo; one game state frame fits many times
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_MAX_CONNECTIONS_PER_USER = 8  # a player's devices and tabs, not a bot farm
DEFAULT_MAX_INFLIGHT = 64  # async calls one connection may have running at once
DEFAULT_MAX_OUTBOX_BYTES = 1024 * 1024  # queued notifications per connection (as Centrifugo)
DEFAULT_MAX_BATCH = 100  # requests in one JSON-RPC batch (as Erigon's rpc.batch.limit)
# A socket that takes no bytes for this long is a client that stopped reading (Centrifugo's
# websocket_write_timeout is 1 s per write; this counts from the last progress instead).
DEFAULT_WRITE_TIMEOUT = 5.0
DEFAULT_PING_INTERVAL = 15.0  # Nakama 15 s, Centrifugo 25 s: under most NAT idle timeouts
DEFAULT_PING_TIMEOUT = 10.0  # a dead peer is gone within 25 s
DEFAULT_DRAIN = 5.0  # seconds between "not ready" and closing connections on shutdown
DEFAULT_GRACE = 5.0  # a dropped session is held this long: a quick reconnect flaps nothing
DEFAULT_TOKEN_TTL = 3600.0  # a recovery token's life; the SDK fetches a new one at half of it
# A client over its outbox's pressure mark this long is closed 4008 (Centrifugo closes at
# once when its queue is full; a game client on a bad minute deserves the shedding first).
DEFAULT_SLOW_CONSUMER_GRACE = 10.0
MAX_PORT = 65535  # TCP ports are 16 bits; 0 asks the system for a free one
TRANSPORTS = ("websockets", "picows")  # the drivers of rtctl.gateway.transports
DEFAULT_TRANSPORT = "websockets"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one gateway accepts before it refuses or closes."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_user: int = DEFAULT_MAX_CONNECTIONS_PER_USER
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES
    max_batch: int = DEFAULT_MAX_BATCH
    write_timeout: float = DEFAULT_WRITE_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """WebSocket ping every ``interval`` s; no pong within ``timeout`` s closes (1011)."""

    interval: float = DEFAULT_PING_INTERVAL
    timeout: float = DEFAULT_PING_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """How a client that dropped gets its session and its rooms' messages back.

    A dropped session is held ``grace`` s (0: ended at once) before presence
    says offline and its rooms are left; a recovery token lasts ``token_ttl``
    s and is signed with ``secret`` (default: derived from the JWT secret).
    Each room keeps its last ``history_size`` messages for ``history_ttl`` s
    after its last one: a client that was away longer gets ``recovered:
    false``.
    """

    grace: float = DEFAULT_GRACE
    token_ttl: float = DEFAULT_TOKEN_TTL
    secret: str | None = field(default=None, repr=False)
    history_size: int = DEFAULT_HISTORY_SIZE
    history_ttl: float = DEFAULT_HISTORY_TTL

    def __post_init__(self) -> None:
        if self.grace < 0:
            raise ConfigError(f"recovery grace must be zero or more seconds, got {self.grace:g}")
        if self.token_ttl <= 0:
            raise ConfigError(f"recovery token_ttl must be above 0, got {self.token_ttl:g}")
        if self.secret == "":
            raise ConfigError("the recovery secret is empty")
        self.history  # noqa: B018 - its own checks, now rather than at the first publish

    @property
    def history(self) -> HistoryLimits:
        """The rooms' history limits (a recovery replays at most ``history_size`` messages)."""
        return HistoryLimits(size=self.history_size, ttl=self.history_ttl,
                             max_replay=self.history_size)


@dataclass(frozen=True, kw_only=True)
class Routing:
    """How each connection's outbound lanes are shaped, batched and compressed.

    ``lanes`` False puts everything, replies too, in one FIFO (the comparison
    run). ``outbound_rate`` is bytes per second per connection (None:
    unlimited), ``outbound_burst`` bytes (None: one second's worth).
    ``inbound_rate`` is calls per second per connection (None: unlimited),
    ``inbound_burst`` calls (None: one second's worth, at least 1).
    Notifications to one connection are joined into one JSON-RPC batch frame
    for ``batch_window`` s, or until ``batch_bytes`` are waiting (both None: no
    batching). A connection over its outbox's pressure mark for
    ``slow_consumer_grace`` s is closed with 4008. ``compression`` negotiates
    permessage-deflate (RFC 7692, ``websockets`` transport only) at
    ``compression_level``, leaving messages under ``compression_threshold``
    bytes uncompressed.
    """

    lanes: bool = True
    outbound_rate: float | None = None
    outbound_burst: int | None = None
    inbound_rate: float | None = None
    inbound_burst: int | None = None
    batch_window: float | None = None
    batch_bytes: int | None = None
    slow_consumer_grace: float = DEFAULT_SLOW_CONSUMER_GRACE
    compression: bool = False
    compression_level: int = 1
    compression_threshold: int = 256

    def __post_init__(self) -> None:
        for name in ("outbound_rate", "outbound_burst", "inbound_rate", "inbound_burst",
                     "batch_window", "batch_bytes"):
            if (value := getattr(self, name)) is not None and not value > 0:
                raise ConfigError(f"routing {name} must be above 0, got {value:g}")
        if self.outbound_burst is not None and self.outbound_rate is None:
            raise ConfigError("an outbound burst needs an outbound rate (--outbound-rate)")
        if self.inbound_burst is not None and self.inbound_rate is None:
            raise ConfigError("an inbound burst needs an inbound rate (--inbound-rate)")
        if self.slow_consumer_grace < 0:
            raise ConfigError("routing slow_consumer_grace must be zero or more seconds, "
                              f"got {self.slow_consumer_grace:g}")
        if not 0 <= self.compression_level <= 9:  # zlib's levels (RFC 1950)
            raise ConfigError("routing compression_level must be 0 to 9, "
                              f"got {self.compression_level}")
        if self.compression_threshold < 0:
            raise ConfigError("routing compression_threshold must be zero or more bytes, "
                              f"got {self.compression_threshold}")

    @property
    def burst_bytes(self) -> int | None:
        """The outbound bucket's size: ``outbound_burst``, else one second at the rate."""
        if self.outbound_rate is None:
            return None
        return self.outbound_burst or max(int(self.outbound_rate), 1)

    @property
    def burst_calls(self) -> int | None:
        """The inbound bucket's size: ``inbound_burst``, else one second at the rate."""
        if self.inbound_rate is None:
            return None
        return self.inbound_burst or max(int(self.inbound_rate), 1)


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """Everything ``rtctl serve`` needs; ``port=0`` picks a free port."""

    auth: AuthConfig
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    path: str = DEFAULT_PATH
    limits: Limits = field(default_factory=Limits)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    drain: float = DEFAULT_DRAIN
    transport: str = DEFAULT_TRANSPORT  # one of TRANSPORTS
    recovery: Recovery = field(default_factory=Recovery)
    routing: Routing = field(default_factory=Routing)

    def __post_init__(self) -> None:
        """Refuse what cannot work, whether it came from a flag, a file or code."""
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"unknown transport {self.transport!r} "
                              f"(choose {' or '.join(TRANSPORTS)})")
        if not 0 <= self.port <= MAX_PORT:
            raise ConfigError(f"port {self.port} is not a TCP port (0 to {MAX_PORT}; "
                              "0 picks a free one)")
        if self.drain < 0:
            raise ConfigError(f"drain must be zero or more seconds, got {self.drain:g}")
        # Every limit and heartbeat time is a size, a count or a time: zero would refuse
        # every connection or spin the keepalive, a negative one means nothing.
        for label, section in (("limits", self.limits), ("heartbeat", self.heartbeat)):
            for item in fields(section):
                if (value := getattr(section, item.name)) <= 0:
                    raise ConfigError(f"{label} {item.name} must be above 0, got {value:g}")
        batch_bytes = self.routing.batch_bytes
        if batch_bytes is not None and batch_bytes > self.limits.max_message_size:
            raise ConfigError(f"routing batch_bytes ({batch_bytes}) is above limits "
                              f"max_message_size ({self.limits.max_message_size}): a batch "
                              "goes as one message, which clients take only up to their "
                              "own limit")
        if self.routing.compression and self.transport != "websockets":
            raise ConfigError(f"permessage-deflate needs the websockets transport; "
                              f"{self.transport} does not offer it")


def _boolean(value: object) -> bool:
    """A true/false key of the file: ``1`` or ``"yes"`` are refused, not guessed."""
    if not isinstance(value, bool):
        raise ValueError(value)
    return value


def _bytes_per_second(value: str) -> float:
    return parse_rate(value) / 8


def _integer(value: str | int | float) -> int:
    """An integer key of the file: ``true`` and ``2.5`` are refused, not read as 1 and 2."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


_CONVERTERS: dict[str, Any] = {
    "port": _integer,
    "host": str,
    "path": str,
    "drain": parse_duration,
    "transport": str,
    "max_message_size": parse_size,
    "max_connections": _integer,
    "max_connections_per_user": _integer,
    "max_inflight": _integer,
    "max_outbox_bytes": parse_size,
    "max_batch": _integer,
    "write_timeout": parse_duration,
    "interval": parse_duration,
    "timeout": parse_duration,
    "leeway": parse_duration,
    "secret": str,
    "public_key": str,
    "jwks": str,
    "audience": str,
    "issuer": str,
    "grace": parse_duration,
    "token_ttl": parse_duration,
    "history_size": _integer,
    "history_ttl": parse_duration,
    "lanes": _boolean,
    "outbound_rate": _bytes_per_second,
    "outbound_burst": parse_size,
    "inbound_rate": parse_call_rate,
    "inbound_burst": _integer,
    "batch_window": parse_window,  # split into batch_window and batch_bytes by load_config_file
    "slow_consumer_grace": parse_duration,
    "compression": _boolean,
    "compression_level": _integer,
    "compression_threshold": parse_size,
}
_SECTIONS = {
    "server": {"host", "port", "path", "drain", "transport"},
    "auth": {"secret", "public_key", "jwks", "audience", "issuer", "leeway"},
    "limits": {f.name for f in fields(Limits)},
    "heartbeat": {f.name for f in fields(Heartbeat)},
    "recovery": {f.name for f in fields(Recovery)},
    "routing": {f.name for f in fields(Routing)} - {"batch_bytes"},
}


def load_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a TOML config: known sections and keys, values converted.

    ``auth.public_key`` names a PEM file; it is returned as a path string.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (TOML must be)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    checked: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section not in _SECTIONS:
            known = ", ".join(f"[{name}]" for name in _SECTIONS)
            raise ConfigError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path}: {section} must be a section [{section}], not a value")
        checked[section] = {}
        for key, value in values.items():
            if key not in _SECTIONS[section]:
                known = ", ".join(sorted(_SECTIONS[section]))
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}] (known: {known})")
            try:
                checked[section][key] = _CONVERTERS[key](value)
            except (TypeError, ValueError):
                raise ConfigError(f"{path}: [{section}] {key} = {value!r} is not valid") from None
        if section == "routing" and "batch_window" in checked[section]:
            window = checked[section]
            window["batch_window"], window["batch_bytes"] = window["batch_window"]
    return checked


def merge(config: GatewayConfig, section: str, values: Mapping[str, Any]) -> GatewayConfig:
    """Return ``config`` with one section's values replaced (None values are skipped)."""
    values = {key: value for key, value in values.items() if value is not None}
    if not values:
        return config
    if section == "server":
        return replace(config, **values)
    if section == "limits":
        return replace(config, limits=replace(config.limits, **values))
    if section == "heartbeat":
        return replace(config, heartbeat=replace(config.heartbeat, **values))
    if section == "recovery":
        return replace(config, recovery=replace(config.recovery, **values))
    if section == "routing":
        return replace(config, routing=replace(config.routing, **values))
    raise ConfigError(f"unknown config section {section!r}")
