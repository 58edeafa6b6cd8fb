"""``rtctl serve``: run the reference gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from rtctl.backends import Backends, BackendUnavailable, connect_backends
from rtctl.backends.base import DEFAULT_NODE_TTL
from rtctl.cli.exits import CommandFailed
from rtctl.cli.options import JwtSecret, dev_or_given_secret, import_attr
from rtctl.config import GatewayConfig, Routing, load_config_file, merge
from rtctl.demo.room import ArenaRoom
from rtctl.exceptions import ConfigError
from rtctl.gateway.auth import AuthConfig
from rtctl.gateway.server import Gateway
from rtctl.protocol.redact import redact
from rtctl.router import Router
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom
from rtctl.services.state_room import StateRoom
from rtctl.units import (
    format_duration,
    parse_call_rate,
    parse_duration,
    parse_rate,
    parse_size,
    parse_window,
)

__all__ = ["BUILTIN_ROOM_TYPES", "load_room_types", "load_router", "serve"]

_AUTH = "Authentication"
_LIMITS = "Limits and heartbeat"
_CLUSTER = "Several nodes (Redis and NATS)"
_RECOVERY = "Session recovery"
_ROUTING = "Outbound lanes, shaping, batching and compression"


def say(line: str) -> None:
    """Print a status line; a closed stdout must never stop a shutdown."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def load_router(spec: str) -> Router:
    """Import ``MODULE:ATTR`` and check it is a Router."""
    target = import_attr(spec, "--router", "mygame.rpc:router")
    if not isinstance(target, Router):
        raise ConfigError(
            f"--router: {spec} is a {type(target).__name__}, not an rtctl Router")
    return target


BUILTIN_ROOM_TYPES: dict[str, type[StateRoom[Any]]] = {"drift": DriftRoom, "arena": ArenaRoom}


def load_room_types(specs: list[str]) -> dict[str, type[StateRoom[Any]]]:
    """``NAME=MODULE:ATTR`` (a game's StateRoom class) or a built-in type's bare name."""
    types: dict[str, type[StateRoom[Any]]] = {}
    for spec in specs:
        name, sep, target_spec = spec.partition("=")
        if not sep:
            if spec not in BUILTIN_ROOM_TYPES:
                raise ConfigError(f"--room-type expects NAME=MODULE:ATTR (like "
                                  f"arena=mygame.rooms:ArenaRoom) or a built-in type "
                                  f"({', '.join(BUILTIN_ROOM_TYPES)}), got {spec!r}")
            types[spec] = BUILTIN_ROOM_TYPES[spec]
            continue
        target = import_attr(target_spec, "--room-type", "arena=mygame.rooms:ArenaRoom")
        if not (isinstance(target, type) and issubclass(target, StateRoom)):
            raise ConfigError(f"--room-type: {target_spec} is not an rtctl StateRoom class")
        if name in types:
            raise ConfigError(f"--room-type: {name!r} is given twice")
        types[name] = target
    try:
        builtin_services(room_types=types)
    except ValueError as exc:
        raise ConfigError(f"--room-type: {exc}") from None
    return types


def _auth_config(
    file_auth: dict[str, Any], secret: str | None, public_key: Path | None, jwks: Path | None,
    audience: str | None, issuer: str | None, leeway: str | None,
) -> tuple[AuthConfig, str]:
    """Build the auth config and a one-line description of where its key came from."""
    extra: dict[str, Any] = {
        "audience": audience or file_auth.get("audience"),
        "issuer": issuer or file_auth.get("issuer"),
    }
    if leeway is not None or "leeway" in file_auth:
        extra["leeway"] = parse_duration(leeway) if leeway is not None else file_auth["leeway"]
    if secret is None and public_key is None and jwks is None:  # flags override the file
        secret = file_auth.get("secret")
        public_key, jwks = file_auth.get("public_key"), file_auth.get("jwks")
    key_path, jwks_path = public_key, jwks
    if sum(x is not None for x in (secret, key_path, jwks_path)) > 1:
        raise ConfigError("give one of --jwt-secret, --jwt-public-key and --jwks, not several")
    if key_path is not None:
        return AuthConfig.from_public_key_file(key_path, **extra), f"public key {key_path}"
    if jwks_path is not None:
        return AuthConfig(jwks=str(jwks_path), **extra), f"JWKS {jwks_path}"
    if secret is not None:
        return AuthConfig(secret=secret, **extra), "shared secret (HS256)"
    dev_secret, path = dev_or_given_secret(None)
    return (AuthConfig(secret=dev_secret, **extra),
            f"DEV MODE: random secret in {path}; mint tokens with `rtctl token --sub alice`")


def serve(
    host: Annotated[str | None, typer.Option(
        help="Interface to bind. (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(
        help="Port to bind; 0 picks a free one. (default 8765)")] = None,
    transport: Annotated[str | None, typer.Option(
        help="The WebSocket driver: websockets (the reference) or picows (on uvloop, about "
             "twice the messages per core; no permessage-deflate). (default websockets)",
    )] = None,
    router: Annotated[str | None, typer.Option(
        help="Your game's methods: MODULE:ATTR naming an rtctl Router, "
             "e.g. mygame.rpc:router (imported from the current directory too).")] = None,
    room_type: Annotated[list[str] | None, typer.Option(
        "--room-type", help="A stateful room type, repeatable: NAME=MODULE:ATTR naming your "
        "StateRoom class (rooms NAME and NAME:* are of that type), or a built-in type: `drift` "
        "(the self-moving room of `rtctl bench --scenario state`) or `arena` (the demo "
        "shooter of `rtctl bench --scenario arena` and docs/netcode.md).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML file with \\[server], \\[auth], \\[limits], \\[heartbeat], "
                         "\\[recovery], \\[routing]; flags override it.")] = None,
    jwt_secret: JwtSecret = None,
    jwt_public_key: Annotated[Path | None, typer.Option(
        help="PEM public key (RSA or EC) verifying RS256/ES256 tokens.", rich_help_panel=_AUTH,
    )] = None,
    jwks: Annotated[Path | None, typer.Option(
        help="JWKS file (RFC 7517); keys chosen by the token's kid.", rich_help_panel=_AUTH,
    )] = None,
    audience: Annotated[str | None, typer.Option(
        help="Require this `aud` claim.", rich_help_panel=_AUTH)] = None,
    issuer: Annotated[str | None, typer.Option(
        help="Require this `iss` claim.", rich_help_panel=_AUTH)] = None,
    leeway: Annotated[str | None, typer.Option(
        help="Clock skew tolerated on exp/nbf/iat. (default 5s)", rich_help_panel=_AUTH,
    )] = None,
    max_message_size: Annotated[str | None, typer.Option(
        help="Largest message; bigger ones close with 1009. (default 64KiB)",
        rich_help_panel=_LIMITS)] = None,
    max_connections: Annotated[int | None, typer.Option(
        help="Connections this node holds; more get HTTP 503. (default 10000)",
        rich_help_panel=_LIMITS)] = None,
    max_connections_per_user: Annotated[int | None, typer.Option(
        help="Connections one user may hold; more get HTTP 429. (default 8)",
        rich_help_panel=_LIMITS)] = None,
    ping_interval: Annotated[str | None, typer.Option(
        help="WebSocket ping every ... (default 15s)", rich_help_panel=_LIMITS)] = None,
    ping_timeout: Annotated[str | None, typer.Option(
        help="Close (1011) when no pong within ... (default 10s)",
        rich_help_panel=_LIMITS)] = None,
    drain: Annotated[str | None, typer.Option(
        help="On SIGTERM/SIGINT: not ready at once, close with 1001 after ... (default 5s)",
        rich_help_panel=_LIMITS)] = None,
    redis: Annotated[str | None, typer.Option(
        envvar="RTCTL_REDIS_URL", show_envvar=True, rich_help_panel=_CLUSTER,
        help="Sessions, presence and rooms in Redis (redis://HOST:PORT/DB), shared by "
             "every node. (default: in memory, this process only)")] = None,
    nats: Annotated[str | None, typer.Option(
        envvar="RTCTL_NATS_URL", show_envvar=True, rich_help_panel=_CLUSTER,
        help="Events between nodes over NATS (nats://HOST:PORT). "
             "(default: in process only)")] = None,
    node_id: Annotated[str | None, typer.Option(
        help="This node's name in the cluster. (default HOST-PID)",
        rich_help_panel=_CLUSTER)] = None,
    node_ttl: Annotated[str | None, typer.Option(
        help="A node silent this long is dead; survivors end its sessions. (default 10s)",
        rich_help_panel=_CLUSTER)] = None,
    recovery_grace: Annotated[str | None, typer.Option(
        help="A dropped client's session (presence, rooms) is held this long for it to "
             "resume; 0 ends it at once. (default 5s)", rich_help_panel=_RECOVERY)] = None,
    recovery_secret: Annotated[str | None, typer.Option(
        envvar="RTCTL_RECOVERY_SECRET", show_envvar=True, rich_help_panel=_RECOVERY,
        help="Signs recovery tokens; every node must have the same. (default: derived "
             "from --jwt-secret; with a public key, random per node)")] = None,
    history_size: Annotated[int | None, typer.Option(
        help="Messages kept per room for recovery. (default 1000)",
        rich_help_panel=_RECOVERY)] = None,
    history_ttl: Annotated[str | None, typer.Option(
        help="A room's messages are kept this long after its last one; a client away "
             "longer starts afresh (recovered: false). (default 2m)",
        rich_help_panel=_RECOVERY)] = None,
    lanes: Annotated[bool | None, typer.Option(
        "--lanes/--no-lanes", rich_help_panel=_ROUTING,
        help="Priority lanes in each connection's outbox (replies, state, events, chat, "
             "telemetry); --no-lanes queues everything, replies too, in one FIFO. "
             "(default on)")] = None,
    outbound_rate: Annotated[str | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="Bytes per second each connection may receive, e.g. 32KiB/s, 256kbit, 1MB/s; "
             "replies still go at once. (default unlimited)")] = None,
    outbound_burst: Annotated[str | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="Bytes a connection may receive at once above its rate, e.g. 64KiB. "
             "(default one second's worth)")] = None,
    inbound_rate: Annotated[str | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="Calls per second one connection may make, e.g. 50/s; more are answered with "
             "error -32029 and data.retry_after_ms, the connection stays. (default unlimited)",
    )] = None,
    inbound_burst: Annotated[int | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="Calls a connection may make at once above its rate. "
             "(default one second's worth)")] = None,
    batch_window: Annotated[str | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="Join notifications to one connection into one frame (a JSON-RPC batch) for "
             "this long, e.g. 2ms, or until this many bytes wait, e.g. 16KiB; replies are "
             "never held. (default off)")] = None,
    slow_consumer_grace: Annotated[str | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="A client this long over its outbox's pressure mark (after shedding droppable "
             "messages) is closed with 4008. (default 10s)")] = None,
    compression: Annotated[bool | None, typer.Option(
        "--compression/--no-compression", rich_help_panel=_ROUTING,
        help="Accept permessage-deflate when a client offers it (RFC 7692; websockets "
             "transport only). Off by default: docs/performance.md has the figures. "
             "(default off)")] = None,
    compression_level: Annotated[int | None, typer.Option(
        rich_help_panel=_ROUTING, help="zlib level 0-9 with --compression. (default 1)")] = None,
    compression_threshold: Annotated[str | None, typer.Option(
        rich_help_panel=_ROUTING,
        help="Messages smaller than this go uncompressed with --compression. "
             "(default 256B)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the reference gateway: WebSocket + JSON-RPC 2.0 at ws://HOST:PORT/ws.

    JWT auth at the upgrade; /healthz, /readyz and /metrics on the same port.
    With no key configured it runs in dev mode (a random secret kept in your
    state directory, shared with `rtctl token`). Stop with Ctrl-C or SIGTERM:
    it drains, then closes connections with 1001.

    Exit codes: 0 stopped by a signal; 1 could not start (port in use, Redis or
    NATS not there); 2 bad usage (a bad value, --config or --router file).
    """
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.lower() != "debug":  # one line per connection is for debugging only
        for name in ("websockets", "rtctl.gateway.picows"):
            logging.getLogger(name).setLevel(logging.WARNING)
    sections = load_config_file(config) if config is not None else {}
    auth, key_source = _auth_config(sections.get("auth", {}), jwt_secret, jwt_public_key, jwks,
                                    audience, issuer, leeway)
    cfg = GatewayConfig(auth=auth)
    for section in ("server", "limits", "heartbeat", "recovery", "routing"):
        cfg = merge(cfg, section, sections.get(section, {}))
    cfg = merge(cfg, "server", {"host": host, "port": port, "transport": transport,
                                "drain": parse_duration(drain) if drain else None})
    cfg = merge(cfg, "limits", {
        "max_message_size": parse_size(max_message_size) if max_message_size else None,
        "max_connections": max_connections,
        "max_connections_per_user": max_connections_per_user,
    })
    cfg = merge(cfg, "heartbeat", {
        "interval": parse_duration(ping_interval) if ping_interval else None,
        "timeout": parse_duration(ping_timeout) if ping_timeout else None,
    })
    cfg = merge(cfg, "recovery", {
        "grace": parse_duration(recovery_grace) if recovery_grace else None,
        "secret": recovery_secret, "history_size": history_size,
        "history_ttl": parse_duration(history_ttl) if history_ttl else None,
    })
    window = parse_window(batch_window) if batch_window else (None, None)
    cfg = merge(cfg, "routing", {
        "lanes": lanes,
        "outbound_rate": parse_rate(outbound_rate) / 8 if outbound_rate else None,
        "outbound_burst": parse_size(outbound_burst) if outbound_burst else None,
        "inbound_rate": parse_call_rate(inbound_rate) if inbound_rate else None,
        "inbound_burst": inbound_burst,
        "batch_window": window[0], "batch_bytes": window[1],
        "slow_consumer_grace": (parse_duration(slow_consumer_grace)
                                if slow_consumer_grace else None),
        "compression": compression, "compression_level": compression_level,
        "compression_threshold": (parse_size(compression_threshold)
                                  if compression_threshold else None),
    })
    game_router = load_router(router) if router else None
    backends = connect_backends(
        redis_url=redis, nats_url=nats, node_id=node_id,
        node_ttl=parse_duration(node_ttl) if node_ttl else DEFAULT_NODE_TTL,
        history=cfg.recovery.history)
    room_types = load_room_types(room_type or [])
    main = _run(cfg, game_router, key_source, router, backends, room_types)
    if cfg.transport == "picows":
        import uvloop  # the loop picows is fastest on; only this driver needs it

        uvloop.run(main)
    else:
        asyncio.run(main)


def _cluster_line(backends: Backends) -> str:
    shared = [f"{c.name} {redact(c.url)}" for c in backends.connections]
    return (f"  cluster: node {backends.node_id} · node TTL {format_duration(backends.node_ttl)}"
            f" · {', '.join(shared) if shared else 'memory (this process only)'}")


def _routing_line(routing: Routing) -> str:
    parts = ["lanes" if routing.lanes else "one FIFO (--no-lanes)"]
    if routing.outbound_rate is not None:
        parts.append(f"out {routing.outbound_rate / 1024:g} KiB/s "
                     f"(burst {routing.burst_bytes} B)")
    if routing.inbound_rate is not None:
        parts.append(f"in {routing.inbound_rate:g} calls/s (burst {routing.burst_calls})")
    if routing.batch_window is not None or routing.batch_bytes is not None:
        limits = ([format_duration(routing.batch_window)] if routing.batch_window else []) + (
            [f"{routing.batch_bytes} B"] if routing.batch_bytes else [])
        parts.append(f"batches of {' or '.join(limits)}")
    parts.append(f"slow consumers closed after {format_duration(routing.slow_consumer_grace)}")
    if routing.compression:
        parts.append(f"deflate level {routing.compression_level} from "
                     f"{routing.compression_threshold} B")
    return "  routing: " + " · ".join(parts)


async def _run(cfg: GatewayConfig, router: Router | None, key_source: str,
               router_spec: str | None, backends: Backends,
               room_types: dict[str, type[StateRoom[Any]]]) -> None:
    try:
        gateway = Gateway(cfg, router=router, backends=backends,
                          services=builtin_services(room_types=room_types))
    except ValueError as exc:  # a game method clashing with a built-in one
        raise ConfigError(f"--router: {exc}") from None
    try:
        await gateway.start()
    except OSError as exc:
        raise CommandFailed(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}") from None
    except BackendUnavailable as exc:
        raise CommandFailed(f"cannot start: {exc.message}") from None
    say(f"rtctl gateway listening on {gateway.url}")
    say(f"  auth:    {key_source}")
    builtin = "sys.*, session.*, presence.*, room.*, state.*"
    say(f"  methods: {len(gateway.router.methods)} "
        f"({builtin + (f' + {router_spec}' if router_spec else '')})")
    say(f"  http:    /healthz /readyz /metrics · transport {cfg.transport} · heartbeat "
        f"{format_duration(cfg.heartbeat.interval)}/{format_duration(cfg.heartbeat.timeout)}"
        f" · max message {cfg.limits.max_message_size} B")
    if room_types:
        say("  rooms:   " + ", ".join(f"{name} ({kind.__name__}, {kind.tick_rate:g} Hz)"
                                      for name, kind in room_types.items()))
    say(_cluster_line(backends))
    history = cfg.recovery.history
    say(f"  recovery: grace {format_duration(cfg.recovery.grace)} · history {history.size} "
        f"messages per room for {format_duration(history.ttl)}")
    say(_routing_line(cfg.routing))
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def stop() -> None:
        if not stopping:
            say(f"rtctl gateway draining for {format_duration(cfg.drain)}")
            stopping.append(loop.create_task(gateway.shutdown()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await gateway.wait_stopped()
    say("rtctl gateway stopped")
