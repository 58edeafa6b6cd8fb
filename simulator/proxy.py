"""ws mode: a WebSocket proxy that impairs whole messages, per direction.

The opening handshake (RFC 6455 §4) is done twice with websockets' sans-I/O
protocols: at the client's upgrade the proxy opens the upstream connection
first, with the same path and query, the headers that carry identity
(``Authorization``, ``Cookie``, ``Origin``, ``User-Agent``) and the offered
subprotocols, then answers the client itself (§4.2.2) with the subprotocol the
server chose. When the server refuses the upgrade, its HTTP status, reason and
body go back to the client unchanged, so a bad token reads the same through the
proxy as without it. No extension is negotiated on either side.

After the handshake the proxy relays frames, not messages
(:mod:`simulator.relay`): each direction's frames are forwarded unchanged,
and the link shapes each message whole (a data frame and its continuations,
§5.4). A clean link costs a header parse per frame and one write per read.
Pings and pongs travel end to end and are not impaired; a close is passed on
after the messages in flight. A framing error fails the connection with a
close frame to both sides (§7.1.7), and stopping the proxy closes each with
1001 (going away, §7.4.1).
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import jwt
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from rtctl.exceptions import ConfigError
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.upgrade import token_from_request
from simulator.base import Listener, ShapingProxy
from simulator.frames import FrameError, close_frame
from simulator.relay import Relay
from simulator.scenario import Client, Conditions

__all__ = ["FORWARDED_HEADERS", "WebSocketProxy", "token_user"]

FORWARDED_HEADERS = ("Authorization", "Cookie", "Origin", "User-Agent")
_REFUSAL_HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After")
_OPEN_TIMEOUT = 10.0
_READ_SIZE = 64 * 1024
_HEAD_END = b"\r\n\r\n"

Upstream = tuple[asyncio.StreamReader, asyncio.StreamWriter, Subprotocol | None]


def _response(status: int, body: bytes, headers: Headers | None = None) -> Response:
    headers = headers or Headers([("Content-Type", "application/json")])
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _offered(request: Request) -> list[Subprotocol]:
    return [Subprotocol(p.strip()) for v in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in v.split(",")]


def token_user(request: Request) -> str | None:
    """The ``sub`` of the token in the upgrade, read without checking it (for rules only)."""
    token = token_from_request(authorization=request.headers.get("Authorization"),
                               query=urlsplit(request.path).query,
                               subprotocols=_offered(request))
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

    async def _listen(self) -> Listener:
        return await asyncio.start_server(self._handle, self.host, self.requested_port)

    def _target(self, path: str) -> str:
        """The upstream URL for the client's request path (``/`` means upstream's own path)."""
        base = self.upstream
        if urlsplit(path).path in ("", "/") and base.path not in ("", "/"):
            path = base.path + (f"?{base.query}" if base.query else "")
        return f"{base.scheme}://{base.netloc}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("unknown", 0)
        server = ServerProtocol()
        try:
            async with asyncio.timeout(_OPEN_TIMEOUT):
                server.receive_data(await reader.readuntil(_HEAD_END))
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            writer.transport.abort()
            return
        events = server.events_received()
        if not events or not isinstance(request := events[0], Request):
            await _refuse(writer, server.reject(400, f"Bad upgrade: {server.handshake_exc}\n"))
            return
        if self.conditions.resetting(self.elapsed()):
            await _refuse(writer, _response(
                503, b'{"error":"outage","detail":"rtctl simulate: link is down"}'))
            return
        opened = await self._open_upstream(request, str(peer[0]))
        if isinstance(opened, Response):
            await _refuse(writer, opened)
            return
        up_reader, up_writer, chosen = opened
        server = ServerProtocol(select_subprotocol=lambda _protocol, _offered: chosen)
        response = server.accept(request)
        if response.status_code != 101:
            up_writer.transport.abort()
            await _refuse(writer, response)
            return
        response.headers["Server"] = "rtctl-simulate"
        writer.write(response.serialize())
        await self._relay(Client(str(peer[0]), int(peer[1]), token_user(request)),
                          (reader, writer), (up_reader, up_writer))

    async def _open_upstream(self, request: Request, host: str) -> Upstream | Response:
        """Upgrade upstream as the client asked; the server's refusal or a 502 if it fails."""
        up_writer = None
        try:
            uri = parse_uri(self._target(request.path))
            offered = _offered(request)
            protocol = ClientProtocol(uri, subprotocols=offered or None)
            upgrade = protocol.connect()
            for name in FORWARDED_HEADERS:
                for value in request.headers.get_all(name):
                    upgrade.headers[name] = value
            upgrade.headers["X-Forwarded-For"] = host
            protocol.send_request(upgrade)
            async with asyncio.timeout(_OPEN_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection(
                    uri.host, uri.port, ssl=True if uri.secure else None)
                up_writer.writelines(protocol.data_to_send())
                protocol.receive_data(await up_reader.readuntil(_HEAD_END))
                while not protocol.events_received():  # a refusal's body
                    if protocol.handshake_exc is not None:
                        raise protocol.handshake_exc
                    if data := await up_reader.read(_READ_SIZE):
                        protocol.receive_data(data)
                    else:
                        protocol.receive_eof()
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
        except InvalidStatus as exc:
            refused = exc.response
            kept = Headers([(k, v) for k in _REFUSAL_HEADERS for v in refused.headers.get_all(k)])
            failure = _response(refused.status_code, bytes(refused.body), kept)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            detail = (str(exc) or type(exc).__name__).replace('"', "'")
            failure = _response(502, f'{{"error":"bad_gateway","detail":"{detail}"}}'.encode())
        else:
            return up_reader, up_writer, protocol.subprotocol
        if up_writer is not None:
            up_writer.transport.abort()
        return failure

    async def _relay(self, client: Client,
                     down: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                     up: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        """Relay both directions until both ended; the pair is registered meanwhile."""
        (reader, writer), (up_reader, up_writer) = down, up

        def abort() -> None:
            writer.transport.abort()
            up_writer.transport.abort()

        def fail(error: FrameError) -> None:
            """Fail the connection (§7.1.7): a close frame to each side, then the end."""
            for side, mask in ((writer, False), (up_writer, True)):
                with contextlib.suppress(RuntimeError):  # this side was already half-closed
                    side.write(close_frame(error.code, error.reason, mask=mask))
                side.close()

        pair = self.open_pair(client, abort)
        pair.going_away = lambda: fail(FrameError(CloseCode.GOING_AWAY, "rtctl simulate stopped"))
        try:
            await asyncio.gather(Relay(self, pair, "up", reader, up_writer, fail=fail).run(),
                                 Relay(self, pair, "down", up_reader, writer, fail=fail).run())
        finally:
            self.close_pair(pair)
            abort()


async def _refuse(writer: asyncio.StreamWriter, response: Response) -> None:
    """Answer the upgrade with ``response`` (not 101) and close the connection."""
    writer.write(response.serialize())
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()
