"""``rtctl tui --demo``: the whole stack in one process, on free ports.

::

    bots ─┐
          ├─► simulator (ws proxy, port 0) ─► gateway (port 0, embedded defaults)
 observer ┘                                        │ tap (in process)
                                                   └──► the TUI

Every client, the TUI's own observer included, connects through the
simulator, so a change of latency or loss there shows at once in the
observer's RTT and in the bots' traffic. The gateway signs tokens with a
fresh random secret that never leaves the process. It registers the built-in
stateful room type ``drift`` (:mod:`rtctl.services.drift`), so the state
screen has a room to show: ``drift:1`` is made when it is first joined.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from rtctl.client import Client
from rtctl.config import GatewayConfig
from rtctl.gateway.auth import AuthConfig
from rtctl.gateway.server import Gateway
from rtctl.protocol.tap import ADMIN_ROLE
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom
from rtctl.services.state_room import StateRoom
from rtctl.tokens import issue_token
from rtctl.tui.bots import BotConfig, BotCrowd
from rtctl.tui.stack import OBSERVER, Stack
from simulator.proxy import WebSocketProxy
from simulator.scenario import Conditions

__all__ = ["DEFAULT_OBSERVER_PING", "ROOM_TYPES", "DemoConfig", "start_demo"]

DEFAULT_OBSERVER_PING = 0.5  # seconds: often enough that the RTT follows a change at once
_TOKEN_TTL = 24 * 3600.0
ROOM_TYPES: dict[str, type[StateRoom[Any]]] = {"drift": DriftRoom}  # the demo's stateful rooms


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """The demo's knobs; tests use fewer bots and faster timers."""

    bots: BotConfig = field(default_factory=BotConfig)
    observer_ping: float = DEFAULT_OBSERVER_PING
    call_timeout: float = 2.0
    host: str = "127.0.0.1"
    seed: int | None = None  # seeds the simulator's impairments


async def start_demo(config: DemoConfig | None = None) -> Stack:
    """Start gateway, simulator, observer and bots; the caller must ``await stack.close()``."""
    config = config or DemoConfig()
    secret = secrets.token_urlsafe(32)

    def token_for(user: str, **claims: str) -> str:
        return issue_token(secret, sub=user, ttl=_TOKEN_TTL, claims=claims)

    gateway = Gateway(GatewayConfig(auth=AuthConfig(secret=secret), host=config.host, port=0),
                      services=builtin_services(room_types=ROOM_TYPES))
    await gateway.start()
    tap = gateway.tap.subscribe()  # before anyone connects: the inspector sees it all
    proxy = WebSocketProxy(gateway.url, Conditions(), host=config.host, port=0,
                           seed=config.seed)
    try:
        await proxy.start()
    except BaseException:
        await gateway.shutdown(drain=0)
        raise
    token = token_for(OBSERVER, role=ADMIN_ROLE)  # the TUI may read /profile
    observer = Client(proxy.url, token=token, ping_interval=config.observer_ping,
                      call_timeout=config.call_timeout)
    bots = BotCrowd(proxy.url, token_for, config.bots)
    stack = Stack(observer=observer, url=proxy.url, ping_interval=config.observer_ping,
                  token=token, gateway_url=gateway.url,
                  gateway=gateway, proxy=proxy, bots=bots, tap=tap,
                  known_users=[OBSERVER, *bots.names],
                  schemas={name: kind.schema for name, kind in ROOM_TYPES.items()})
    try:
        await observer.connect()
    except BaseException:
        await stack.close()
        raise
    bots.start()
    return stack
