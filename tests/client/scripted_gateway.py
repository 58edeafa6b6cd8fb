"""A JSON-RPC gateway on loopback that answers as a test scripts it, for the recovery tests.

Each connection's upgrade path (with its query) and requests are recorded; a
request is answered by the test's ``answer(conn, request)`` in a task of its
own (as the gateway runs a connection's calls side by side): its return value
is the result, an :class:`~rtctl.RpcError` the error, and :data:`HOLD` no
reply at all. ``session.info`` and ``sys.ping`` have defaults that hand out
recovery tokens ``t1``, ``t2``, ... and resume a session when one comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from rtctl import RpcError
from rtctl.client import Client
from rtctl.client.transport import TransportName
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from tests.client.lab import FAST, WAIT

__all__ = ["HOLD", "Conn", "Scene", "ScriptedGateway"]

HOLD = object()  # an answer that is never sent
TOKEN_LIFE = 3600.0  # s

Answer = Callable[["Conn", dict[str, Any]], Awaitable[Any]]


class Conn:
    """One connection the gateway accepted."""

    def __init__(self, ws: ServerConnection, index: int) -> None:
        self.ws = ws
        self.index = index
        assert ws.request is not None
        self.path = ws.request.path
        self.requests: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()

    @property
    def recover(self) -> str | None:
        """The recovery token of the upgrade's query."""
        values = parse_qs(urlsplit(self.path).query).get("recover")
        return values[0] if values else None

    def methods(self) -> list[str]:
        return [request["method"] for request in self.requests]

    async def notify(self, method: str, params: Any) -> None:
        await self.ws.send(jsonrpc.dumps(jsonrpc.encode_notification(method, params)), text=True)

    async def drop(self) -> None:
        """Close as a gateway going away does (1001): the client reconnects."""
        await self.ws.close(CloseCode.GOING_AWAY, "dropped by the test")

    async def wait_for(self, method: str, count: int = 1) -> dict[str, Any]:
        """The ``count``-th request for ``method``, once it has come."""
        async with asyncio.timeout(WAIT), self.arrived:
            await self.arrived.wait_for(lambda: self.methods().count(method) >= count)
        return [r for r in self.requests if r["method"] == method][count - 1]


class ScriptedGateway:
    """Serves :class:`Conn` objects on 127.0.0.1, port 0; ``answer`` scripts the replies."""

    def __init__(self, answer: Answer | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.answer = answer
        self.clock = clock
        self.conns: list[Conn] = []
        self.sessions: dict[str, str] = {}  # recovery token -> session id
        self.tokens = 0
        self._connected = asyncio.Condition()
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()

    async def conn(self, index: int) -> Conn:
        """The ``index``-th connection (0 the first), once it has opened."""
        async with asyncio.timeout(WAIT), self._connected:
            await self._connected.wait_for(lambda: len(self.conns) > index)
        return self.conns[index]

    def session_info(self, conn: Conn) -> dict[str, Any]:
        """What ``session.info`` answers by default: a fresh token each time."""
        session = self.sessions.get(conn.recover or "", f"s{conn.index + 1}")
        self.tokens += 1
        token = f"t{self.tokens}"
        self.sessions[token] = session
        return {"connection_id": session, "user": "alice", "recovery_token": token,
                "recovery_expires_at": (self.clock() + TOKEN_LIFE) * 1000,
                "resumed": conn.recover in self.sessions, "resume_error": None}

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Conn(ws, len(self.conns))
        async with self._connected:
            self.conns.append(conn)
            self._connected.notify_all()
        with contextlib.suppress(ConnectionClosed):  # closed with an error code: done too
            async for message in ws:
                request = jsonrpc.loads(message)
                async with conn.arrived:
                    conn.requests.append(request)
                    conn.arrived.notify_all()
                task = asyncio.get_running_loop().create_task(self._reply(conn, request))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _reply(self, conn: Conn, request: dict[str, Any]) -> None:
        try:
            result = await self._answer(conn, request)
        except RpcError as exc:
            reply = jsonrpc.encode_error(request["id"], exc.code, exc.message, exc.data)
        else:
            if result is HOLD or "id" not in request:
                return
            reply = jsonrpc.encode_result(request["id"], result)
        with contextlib.suppress(ConnectionClosed):  # the test dropped it meanwhile
            await conn.ws.send(jsonrpc.dumps(reply), text=True)

    async def _answer(self, conn: Conn, request: dict[str, Any]) -> Any:
        if self.answer is not None:
            result = await self.answer(conn, request)
            if result is not NotImplemented:
                return result
        if request["method"] == "session.info":
            return self.session_info(conn)
        if request["method"] == "sys.ping":
            return {"time": self.clock() * 1000}
        return None


class Scene:
    """A scripted gateway and the clients of one test (the ``scene`` fixture closes them)."""

    def __init__(self, transport: TransportName) -> None:
        self.transport = transport
        self.gateway = ScriptedGateway()
        self.url = ""
        self.clients: list[Client] = []

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("ping_interval", None)
        client = Client(self.url, transport=self.transport, **kwargs)
        self.clients.append(client)
        return client
