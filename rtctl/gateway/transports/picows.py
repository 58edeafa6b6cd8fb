"""The ``picows`` driver: the gateway's core under picows, fastest on uvloop.

picows parses frames in C and calls back per frame, so a connection costs no
coroutine and a message no ``await``: a reply is written in the same callback
that received the request. What ``websockets`` does for the other driver, this
one does itself, to the same contract (``docs/api.md``):

- the handshake: the :class:`~rtctl.gateway.http.Front`'s answer, the
  subprotocol :func:`~rtctl.protocol.upgrade.select_subprotocol` picks echoed
  (RFC 6455 §4.2.2), ``Server: rtctl``;
- messages: continuation frames reassembled (§5.4), binary closes 1003,
  invalid UTF-8 1007, over the size limit 1009, the peer's close echoed (§5.5.1);
  binary messages out (``rtctl.v1.binary``) are opcode 2, in order with text;
- heartbeat: one gateway-wide timer pings every connection each
  ``interval``; a pong missing after ``timeout - close_timeout`` closes 1011,
  so a dead peer is gone within interval + timeout (as with ``websockets``);
- backpressure: when the socket's buffer is full (``pause_writing``) the
  connection stops reading and notifications wait in its outbox (lanes,
  shaping and batching, :mod:`rtctl.gateway.outbox`; 4008 at its bound or
  after the slow-consumer grace); an ordered batch, too many async calls at once, or connect hooks
  still running also stop reading, and what already arrived waits in order.

permessage-deflate is not offered by picows; the ``websockets`` driver
negotiates it only with ``routing.compression``
(:mod:`rtctl.gateway.transports.deflate`), which the config refuses here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any

import aiofastnet
from multidict import CIMultiDict
from picows import (
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]

from rtctl.gateway.http import Admission, Response, UpgradeRequest
from rtctl.gateway.transports import Core, address
from rtctl.gateway.transports.picows_links import GameLink, Link, TapLink
from rtctl.protocol.redact import RedactCredentials
from rtctl.protocol.upgrade import offered_subprotocols, select_subprotocol

__all__ = ["PicowsDriver", "create"]

_HANDSHAKE_TIMEOUT = 10.0
_READ_BUFFER = 2048  # grows as needed; 16 KiB (picows' default) per idle connection is a lot
# A LoggerAdapter, not a Logger: picows makes a child Logger per connection from a Logger.
_LOGGER = logging.LoggerAdapter(logging.getLogger("rtctl.gateway.picows"), {})
_LOGGER.logger.addFilter(RedactCredentials())  # picows logs raw requests, tokens and all


def _http_response(answer: Response) -> WSUpgradeResponse:
    response = WSUpgradeResponse()
    response.version = b"HTTP/1.1"
    response.status = HTTPStatus(answer.status)
    # picows adds Content-Length for a body, and Connection: close for a non-101.
    response.headers = CIMultiDict([(k, v) for k, v in answer.headers if k != "Content-Length"])
    response.headers["Server"] = "rtctl"
    response.body = answer.body
    return response


class PicowsDriver:
    """Serves a :class:`Core` with picows."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.links: set[Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._none_left = asyncio.Event()  # set while no connection is open

    async def start(self) -> None:
        config = self.core.config
        loop = asyncio.get_running_loop()
        self._server = await aiofastnet.create_server(loop, self._protocol, config.host,
                                                      config.port)
        self._heartbeat = loop.create_task(self._beat())

    @property
    def port(self) -> int:
        assert self._server is not None, "the driver is not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, code: int, reason: str) -> None:
        if self._server is None:
            return
        self._server.close()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for link in list(self.links):
            link.close(code, reason)
        if self.links:
            self._none_left.clear()
            await self._none_left.wait()
        while self._tasks:  # the disconnect hooks the last callbacks started
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def remember(self, link: Link) -> None:
        self.links.add(link)

    def forget(self, link: Link) -> None:
        """``link`` is disconnected."""
        self.links.discard(link)
        if not self.links:
            self._none_left.set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task the driver keeps until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _protocol(self) -> WSProtocol:
        protocol: WSProtocol = None

        def route(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
            raw = protocol.transport.underlying_transport
            return self._route(request, address(raw.get_extra_info("peername")))

        limits = self.core.config.limits
        protocol = WSProtocol(
            None, None, False, route, _LOGGER, True, _HANDSHAKE_TIMEOUT,
            False, 20.0, 20.0, WSAutoPingStrategy.PING_WHEN_IDLE,  # our own heartbeat instead
            True, limits.max_message_size, None, _READ_BUFFER)
        return protocol

    def _route(self, request: WSUpgradeRequest, remote: str | None
               ) -> WSUpgradeResponseWithListener:
        headers = request.headers
        offered = offered_subprotocols(headers.getall("Sec-WebSocket-Protocol", ()))
        answer = self.core.front.answer(UpgradeRequest(
            target=request.path.decode("latin-1"),
            authorizations=headers.getall("Authorization", ()), subprotocols=offered,
            remote=remote, hosts=headers.getall("Host", ())))
        if not isinstance(answer, Admission):
            return WSUpgradeResponseWithListener(_http_response(answer), None)
        extra = {"Server": "rtctl"}
        chosen = select_subprotocol(offered)
        if chosen is not None:
            extra["Sec-WebSocket-Protocol"] = chosen
        listener = TapLink(self) if answer.listener else GameLink(self, answer.identity, chosen)
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(extra_headers=extra), listener)

    async def _beat(self) -> None:
        heartbeat = self.core.config.heartbeat
        wait = heartbeat.timeout - self.core.close_timeout
        while True:
            await asyncio.sleep(heartbeat.interval)
            for link in list(self.links):
                if isinstance(link, GameLink):
                    link.ping(wait)


def create(core: Core) -> PicowsDriver:
    return PicowsDriver(core)

