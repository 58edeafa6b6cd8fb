"""ws mode: a WebSocket proxy that impairs whole messages, per direction.

It terminates WebSocket on both sides (RFC 6455). At the client's upgrade it
opens the upstream connection first, with the same path and query, the headers
that carry identity (``Authorization``, ``Cookie``, ``Origin``, ``User-Agent``)
and the offered subprotocols, then answers the client with the subprotocol the
server chose. When the server refuses the upgrade, its HTTP status, reason and
body go back to the client unchanged, so a bad token reads the same through the
proxy as without it.

Messages then flow through each direction's :class:`~simulator.link.Link`;
deliveries are scheduled with the event loop (:mod:`simulator.delivery`), so a
delayed message never stops the next one from being read. WebSocket pings are
answered by the proxy on each side and are not impaired. A close is passed on
with its code after the messages still in flight are delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Data, Subprotocol

from rtctl.exceptions import ConfigError
from rtctl.gateway.auth import token_from_request
from simulator.base import Listener, Pair, ShapingProxy
from simulator.delivery import DeliveryQueue
from simulator.scenario import Client, Conditions

__all__ = ["FORWARDED_HEADERS", "WebSocketProxy"]

FORWARDED_HEADERS = ("Authorization", "Cookie", "Origin", "User-Agent")
_REFUSAL_HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After")
_OPEN_TIMEOUT = 10.0
_DRAIN_TIMEOUT = 5.0  # seconds to deliver what is in flight when one side closes
_UNSENDABLE = {CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE}


def _response(status: int, body: bytes, headers: Headers | None = None) -> Response:
    headers = headers or Headers([("Content-Type", "application/json")])
    headers["Content-Length"] = str(len(body))
    return Response(status, HTTPStatus(status).phrase, headers, body)


def token_user(request: Request) -> str | None:
    """The ``sub`` of the token in the upgrade, read without checking it (for rules only)."""
    offered = [p.strip() for v in request.headers.get_all("Sec-WebSocket-Protocol")
               for p in v.split(",")]
    token = token_from_request(authorization=request.headers.get("Authorization"),
                               query=urlsplit(request.path).query, subprotocols=offered)
    if token is None:
        return None
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.InvalidTokenError:
        return None
    return sub if isinstance(sub, str) else None


class WebSocketProxy(ShapingProxy):
    """``rtctl simulate --mode ws``: impair messages between clients and ``upstream``."""

    stream = False

    def __init__(self, upstream: str, conditions: Conditions, **kwargs: Any) -> None:
        super().__init__(conditions, **kwargs)
        parts = urlsplit(upstream)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ConfigError(f"--upstream {upstream!r} must be a ws:// or wss:// URL")
        self.upstream = parts
        self._pending: dict[ServerConnection, tuple[ClientConnection, Client]] = {}

    async def _listen(self) -> Listener:
        return await serve(
            self._handle, self.host, self.requested_port, process_request=self._upgrade,
            select_subprotocol=self._subprotocol, compression=None, max_size=None,
            server_header="rtctl-simulate")

    def _target(self, path: str) -> str:
        """The upstream URL for the client's request path (``/`` means upstream's own path)."""
        base = self.upstream
        if urlsplit(path).path in ("", "/") and base.path not in ("", "/"):
            path = base.path + (f"?{base.query}" if base.query else "")
        return f"{base.scheme}://{base.netloc}{path}"

    async def _upgrade(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.conditions.resetting(self.elapsed()):
            return _response(503, b'{"error":"outage","detail":"rtctl simulate: link is down"}')
        headers = [(name, value) for name in FORWARDED_HEADERS
                   for value in request.headers.get_all(name)]
        remote = ws.remote_address
        host = str(remote[0]) if remote else "unknown"
        headers.append(("X-Forwarded-For", host))
        offered = [Subprotocol(p.strip()) for v in request.headers.get_all(
            "Sec-WebSocket-Protocol") for p in v.split(",")]
        try:
            upstream = await connect(
                self._target(request.path), additional_headers=headers,
                subprotocols=offered or None, compression=None, max_size=None,
                open_timeout=_OPEN_TIMEOUT, user_agent_header=None, ping_interval=None)
        except InvalidStatus as exc:
            refused = exc.response
            kept = Headers([(k, v) for k in _REFUSAL_HEADERS for v in refused.headers.get_all(k)])
            return _response(refused.status_code, bytes(refused.body), kept)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            detail = str(exc).replace('"', "'")
            return _response(502, f'{{"error":"bad_gateway","detail":"{detail}"}}'.encode())
        client = Client(host, int(remote[1]) if remote else 0, token_user(request))
        self._pending[ws] = (upstream, client)
        return None

    def _subprotocol(self, ws: ServerConnection, offered: Any) -> Subprotocol | None:
        pending = self._pending.get(ws)
        return pending[0].subprotocol if pending else None

    async def _handle(self, ws: ServerConnection) -> None:
        upstream, client = self._pending.pop(ws)

        def abort() -> None:
            ws.transport.abort()
            upstream.transport.abort()

        pair = self.open_pair(client, abort)
        try:
            pumps = [asyncio.create_task(self._pump(pair, "up", ws, upstream)),
                     asyncio.create_task(self._pump(pair, "down", upstream, ws))]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self.close_pair(pair)

    async def _pump(self, pair: Pair, direction: str,
                    src: ServerConnection | ClientConnection,
                    dst: ServerConnection | ClientConnection) -> None:
        """Read from ``src``, shape, deliver to ``dst``; pass the close on at the end."""
        async def deliver(message: Data) -> None:
            with contextlib.suppress(ConnectionClosed):
                await dst.send(message)

        queue: DeliveryQueue[Data] = DeliveryQueue(deliver)
        link = pair.up if direction == "up" else pair.down
        try:
            async for message in src:
                self.refresh(pair)
                size = len(message) if isinstance(message, bytes) else len(message.encode())
                if link.passthrough and queue.idle:
                    self.metrics.passed(direction, size)
                    await dst.send(message)
                    continue
                outcome = self.shape(pair, direction, size)
                for packet in outcome.deliveries:
                    queue.put(self.loop_time(packet.at), message)
        except ConnectionClosed:
            pass
        finally:
            await queue.drain(_DRAIN_TIMEOUT)
            queue.close()
            received = src.protocol.close_rcvd
            code = received.code if received and received.code not in _UNSENDABLE else 1000
            reason = received.reason if received and received.code not in _UNSENDABLE else ""
            await dst.close(code, reason)
