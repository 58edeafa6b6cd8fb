"""The scripted gateway of ``rtctl conformance client``: a real WebSocket server on loopback
that does exactly what a scenario tells it, and records what the client does.

It is not rtctl's gateway: it answers the calls every client makes by itself
(``session.info``, ``sys.ping``, ``room.join`` of rooms no scenario watches,
``room.leave``, ``state.schema``) the way docs/protocol.md says, and hands every other
request to the scenario playing (:mod:`rtctl.conformance.scenarios`), which answers it
when and how the check needs. ``GET /token`` on the same port mints a token
(:func:`rtctl.tokens.issue_token`): the driver contract of docs/conformance.md.
Every upgrade request is recorded, refused or not, with its token and ``recover``
query (§8.3): reconnect delays and "MUST NOT reconnect" are read from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.streams import StreamPosition
from rtctl.protocol.upgrade import offered_subprotocols, select_subprotocol, token_from_request
from rtctl.state import Schema
from rtctl.state.reflect import describe
from rtctl.tokens import issue_token

__all__ = ["Call", "ClientGone", "Conn", "NoShow", "ScriptedGateway", "Upgrade"]

_T = TypeVar("_T")

USER = "conformance"  # the token's subject; the only member of every room
REPORTS = ("conformance.outcome", "conformance.state")  # what the driver tells the gateway
CLOSE_TIMEOUT = 2.0  # s a client has to answer a Close frame before the TCP connection ends
RECOVERY_TTL_MS = 60_000  # session.info's recovery token lifetime: longer than any run


class NoShow(Exception):
    """What a scenario waited for did not come within the timeout; the message says what."""


class ClientGone(NoShow):
    """No connection or upgrade request came: the client is not there to play on with."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One upgrade request (``at`` on the loop's clock), and why it was refused, if it was."""

    at: float
    token: str | None
    recover: str | None
    refused: str | None


@dataclass(eq=False)
class Conn:
    """One accepted connection."""

    ws: ServerConnection
    upgrade: Upgrade
    recovery_tokens: list[str] = field(default_factory=list)  # what session.info gave here

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    async def notify(self, method: str, params: Any = None) -> None:
        await self._send(jsonrpc.encode_notification(method, params))

    async def send_binary(self, frame: bytes) -> None:
        await self.ws.send(frame)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)

    def drop(self) -> None:
        """End the TCP connection with no closing handshake (the client sees 1006)."""
        self.ws.transport.abort()

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):  # its end is what a scenario watches
            await self.ws.send(jsonrpc.dumps(message).decode())


@dataclass(frozen=True, slots=True)
class Call:
    """A request the client made that a scenario answers."""

    conn: Conn
    request: jsonrpc.Request

    @property
    def params(self) -> Any:
        return self.request.params

    async def answer(self, result: Any) -> None:
        if not self.request.is_notification:  # a report sent as a notification is taken too
            await self.conn._send(jsonrpc.encode_result(self.request.id, result))

    async def fail(self, code: int, message: str, data: Any = None) -> None:
        await self.conn._send(jsonrpc.encode_error(self.request.id, code, message, data))


class ScriptedGateway:
    """``async with ScriptedGateway(host, port) as gw``: listening until the block ends."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: Server | None = None
        self._secret = secrets.token_urlsafe(32)
        self._serial = itertools.count(1)
        self.issued: dict[str, float] = {}  # token -> when /token handed it out
        self.expired_before: float | None = None  # tokens issued before this are refused
        self.upgrades: asyncio.Queue[Upgrade] = asyncio.Queue()
        self.connections: asyncio.Queue[Conn] = asyncio.Queue()
        self.current: Conn | None = None  # the newest connection, open or not
        self.rooms: dict[str, StreamPosition] = {}  # where an unwatched room.join starts
        self.state_rooms: dict[str, type[Schema]] = {}  # what state.schema describes
        self._watched: set[str] = set()  # rooms whose room.join a scenario answers
        self._calls: defaultdict[str, asyncio.Queue[Call]] = defaultdict(asyncio.Queue)
        self._pending: dict[ServerConnection, Upgrade] = {}

    async def __aenter__(self) -> ScriptedGateway:
        self._server = await serve(self._serve, self._host, self._port,
                                   process_request=self._process_request,
                                   select_subprotocol=_select, ping_interval=None,
                                   close_timeout=CLOSE_TIMEOUT)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "not listening yet"
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        return "ws://{}:{}/ws".format(*self.address)

    @property
    def token_url(self) -> str:
        return "http://{}:{}/token".format(*self.address)

    # -- what scenarios wait on ------------------------------------------------------

    async def take(self, key: str, timeout: float, what: str) -> Call:
        """The next request filed under ``key`` (a method, ``outcome:METHOD``, or
        ``conformance.state``); :class:`NoShow` naming ``what`` after ``timeout``."""
        return await _within(self._calls[key].get(), timeout, what)

    async def take_first(self, keys: Sequence[str], timeout: float, what: str) -> tuple[str, Call]:
        """Whichever of ``keys`` gets a request first, and that request (see :meth:`take`)."""
        gets = {asyncio.ensure_future(self._calls[key].get()): key for key in keys}
        try:
            done, _ = await asyncio.wait(gets, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for get in gets:
                get.cancel()
        if not done:
            raise NoShow(f"no {what} within {timeout:g} s")
        first, *also = [get for get in gets if get in done]
        for get in also:  # came in the same instant: left for a later take
            self._calls[gets[get]].put_nowait(get.result())
        return gets[first], first.result()

    def waiting(self, key: str) -> int:
        """How many requests under ``key`` came and were not taken."""
        return self._calls[key].qsize()

    async def next_connection(self, timeout: float, what: str) -> Conn:
        return await _within(self.connections.get(), timeout, what, ClientGone)

    async def next_upgrade(self, timeout: float, what: str) -> Upgrade:
        return await _within(self.upgrades.get(), timeout, what, ClientGone)

    def forget_arrivals(self) -> None:
        """Drop the upgrades and connections recorded so far: the next ones come after now."""
        for queue in (self.upgrades, self.connections):
            while not queue.empty():
                queue.get_nowait()

    def reset(self) -> None:
        """Between runs: forget the last driver's connections and every request not taken."""
        self.forget_arrivals()
        self._calls.clear()
        self.current = None

    def watch(self, room: str) -> None:
        self._watched.add(room)

    def unwatch(self, room: str, position: StreamPosition) -> None:
        self._watched.discard(room)
        self.rooms[room] = position

    # -- HTTP ------------------------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path == "/token":
            minted = issue_token(self._secret, sub=USER, ttl=None,
                                 claims={"jti": str(next(self._serial))})
            self.issued[minted] = time.monotonic()
            return conn.respond(HTTPStatus.OK, minted)
        if parts.path != "/ws":
            return _json(HTTPStatus.NOT_FOUND, error="not_found", detail="the endpoint is /ws")
        token = token_from_request(
            authorization=request.headers.get("Authorization"), query=parts.query,
            subprotocols=offered_subprotocols(request.headers.get_all("Sec-WebSocket-Protocol")))
        issued = self.issued.get(token) if token is not None else None
        refused = ("missing" if token is None else "invalid" if issued is None
                   else "expired" if self.expired_before is not None
                   and issued < self.expired_before else None)
        recover = dict(parse_qsl(parts.query)).get("recover")
        upgrade = Upgrade(asyncio.get_running_loop().time(), token, recover, refused)
        self.upgrades.put_nowait(upgrade)
        if refused is not None:
            return _json(HTTPStatus.UNAUTHORIZED, error="unauthorized", reason=refused)
        self._pending[conn] = upgrade
        return None

    # -- WebSocket ----------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        conn = Conn(ws, self._pending.pop(ws))
        self.current = conn
        self.connections.put_nowait(conn)
        try:
            async for message in ws:
                if isinstance(message, bytes):  # §3.3: clients send text frames only
                    await ws.close(CloseCode.UNSUPPORTED_DATA, "binary frames go server to client")
                    return
                await self._received(conn, jsonrpc.decode(message))
        except ConnectionClosed:
            pass

    async def _received(self, conn: Conn, incoming: jsonrpc.Incoming) -> None:
        items = incoming.items if isinstance(incoming, jsonrpc.BatchReceived) else (incoming,)
        for item in items:
            if isinstance(item, jsonrpc.Request) and (not item.is_notification
                                                      or item.method in REPORTS):
                await self._request(Call(conn, item))

    async def _request(self, call: Call) -> None:
        method, params = call.request.method, call.params
        room = params.get("room") if isinstance(params, dict) else None
        if method == "session.info":
            await call.answer(self._session_info(call.conn))
        elif method == "sys.ping":
            await call.answer({"time": int(time.time() * 1000)})
        elif method == "state.schema":
            schema = self.state_rooms.get(room) if isinstance(room, str) else None
            if schema is None:
                await call.fail(ErrorCode.INVALID_PARAMS,
                                f"Invalid params: {room!r} is not a stateful room", {"room": room})
            else:
                await call.answer(describe(schema))
        elif method in ("room.join", "room.leave") and not isinstance(room, str):
            await call.fail(ErrorCode.INVALID_PARAMS,
                            f"Invalid params: {method} needs a room name", {"params": params})
        elif method == "room.leave":
            await call.answer({})
        elif method == "room.join" and isinstance(room, str) and room not in self._watched:
            position = self.rooms.get(room) or StreamPosition(0, "conformance")
            recovered = {"recovered": True, "replayed": 0} if "since" in params else {}
            await call.answer({"members": [USER], "total": 1, **position.to_json(), **recovered})
        elif method in REPORTS:
            await call.answer(True)
            key = (f"outcome:{params.get('method')}" if method == "conformance.outcome"
                   and isinstance(params, dict) else method)
            self._calls[key].put_nowait(call)
        else:
            self._calls[method].put_nowait(call)

    def _session_info(self, conn: Conn) -> dict[str, Any]:
        """§8.3: a new recovery token each time; resumed when the upgrade offered the last."""
        token = f"recover-{next(self._serial)}"
        conn.recovery_tokens.append(token)
        offered = conn.upgrade.recover
        return {"connection_id": f"conformance-{id(conn.ws):x}", "user": USER,
                "recovery_token": token,
                "recovery_expires_at": int(time.time() * 1000) + RECOVERY_TTL_MS,
                "resumed": offered is not None and offered.startswith("recover-"),
                "resume_error": None}


def _select(conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen = select_subprotocol(offered)
    return None if chosen is None else Subprotocol(chosen)


def _json(status: HTTPStatus, **fields: Any) -> Response:
    body = jsonrpc.dumps(fields)
    headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
    return Response(status.value, status.phrase, headers, body)


async def _within(waiting: Awaitable[_T], timeout: float, what: str,
                  gone: type[NoShow] = NoShow) -> _T:
    try:
        async with asyncio.timeout(timeout):
            return await waiting
    except TimeoutError:
        raise gone(f"no {what} within {timeout:g} s") from None
