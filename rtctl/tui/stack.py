"""What the TUI looks at: an observing client, the gateway's tap, and whatever is embedded.

A :class:`Stack` is built either by :func:`rtctl.tui.demo.start_demo` (gateway,
simulator and bots in this process) or by :func:`attach` (a running gateway
reached over the network). The screens only ever read it: ``gateway``,
``proxy`` and ``bots`` are None when attached, and each screen says so
instead of showing numbers it does not have. ``schemas`` are the state
schemas of the room types this process registered (the demo's ``drift``):
the state screen decodes those rooms with them, any other one with the
schema the gateway describes (``state.schema``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from rtctl.client import Client, ClientState, TransportError
from rtctl.client.connection import DEFAULT_PING_INTERVAL
from rtctl.client.endpoint import endpoint_url
from rtctl.gateway.server import Gateway
from rtctl.inspect.listener import listen
from rtctl.protocol.tap import TAP_PATH, TapEvent
from rtctl.state import Schema
from rtctl.tap import Subscription
from rtctl.tui.bots import BotCrowd
from simulator.proxy import WebSocketProxy

__all__ = ["DEFAULT_ATTACH_TIMEOUT", "OBSERVER", "Stack", "attach"]

OBSERVER = "observer"  # the user name of the TUI's own client in the demo
DEFAULT_ATTACH_TIMEOUT = 5.0  # seconds to reach the gateway before giving up
_ATTACHED_PING = 1.0  # seconds between the observer's pings


@dataclass(eq=False, kw_only=True)
class Stack:
    """The parts the screens read; :meth:`close` stops everything this process started."""

    observer: Client
    url: str  # where the observer connects (the simulator's address in the demo)
    ping_interval: float = DEFAULT_PING_INTERVAL  # the observer's: how often an RTT arrives
    token: str | None = None  # the observer's token; with role=admin it opens /tap and /profile
    gateway_url: str = ""  # the gateway itself (HTTP: /profile), "" for ``url``
    gateway: Gateway | None = None
    proxy: WebSocketProxy | None = None
    bots: BotCrowd | None = None
    tap: Subscription | None = None  # in-process tap; None: listen to the remote /tap
    known_users: list[str] = field(default_factory=list)
    schemas: Mapping[str, type[Schema]] = field(default_factory=dict)  # by room type name

    @property
    def admin_url(self) -> str:
        """Where the gateway's own HTTP endpoints are (not through the simulator)."""
        return self.gateway_url or self.url

    @property
    def embedded(self) -> bool:
        """True when the gateway runs in this process."""
        return self.gateway is not None

    async def events(self) -> AsyncIterator[list[TapEvent]]:
        """The tap's events in batches, until it ends (a remote tap needs ``role=admin``)."""
        if self.tap is not None:
            while True:
                yield await self.tap.next_batch()
        else:
            parts = urlsplit(endpoint_url(self.admin_url))  # the tap sits beside the endpoint
            tap = urlunsplit(parts._replace(path=TAP_PATH, query=""))
            async with contextlib.aclosing(listen(tap, token=self.token)) as events:
                async for event in events:
                    yield [event]

    async def close(self) -> None:
        """Bots, observer, tap, simulator, gateway: in that order, each only if started here."""
        if self.bots is not None:
            await self.bots.stop()
        await self.observer.close()
        if self.tap is not None:
            self.tap.close()
        if self.proxy is not None:
            await self.proxy.stop()
        if self.gateway is not None:
            await self.gateway.shutdown(drain=0)


async def attach(url: str, token: str | None, *,
                 timeout: float = DEFAULT_ATTACH_TIMEOUT) -> Stack:
    """Observe the gateway at ``url``: connect a client within ``timeout`` s, or raise."""
    observer = Client(url, token=token, ping_interval=_ATTACHED_PING, call_timeout=2.0)
    try:
        async with asyncio.timeout(timeout):
            await observer.connect()
    except TimeoutError:
        raise TransportError(f"cannot reach {observer.url} within {timeout:g}s "
                             f"({observer.last_error or 'no answer'})") from None
    finally:
        if observer.state is not ClientState.CONNECTED:
            await observer.close()
    return Stack(observer=observer, url=url, ping_interval=_ATTACHED_PING, token=token)
