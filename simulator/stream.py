"""tcp mode: shape a byte stream as TCP would suffer the link.

Every read from one side is cut into segments and run through that direction's
:class:`~simulator.link.Link` in stream mode: delay and bandwidth as in ws mode,
but a lost segment is a retransmission stall (RTO from 200 ms, doubling on
repeated loss, RFC 6298 §5.5) that holds back every byte behind it, and no byte
is ever missing. It works under any protocol on TCP, WebSocket included, without
looking inside; rules can match the client's address but not its token.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from rtctl.exceptions import ConfigError
from simulator.base import Listener, Pair, ShapingProxy
from simulator.delivery import DeliveryQueue
from simulator.scenario import Client, Conditions

__all__ = ["TcpProxy"]

_READ_SIZE = 64 * 1024
_DRAIN_TIMEOUT = 5.0


class TcpProxy(ShapingProxy):
    """``rtctl simulate --mode tcp``: forward TCP to ``upstream``'s host and port."""

    stream = True

    def __init__(self, upstream: str, conditions: Conditions, **kwargs: Any) -> None:
        super().__init__(conditions, **kwargs)
        parts = urlsplit(upstream if "://" in upstream else f"tcp://{upstream}")
        if not parts.hostname:
            raise ConfigError(f"--upstream {upstream!r} names no host")
        default_port = 443 if parts.scheme in ("wss", "https") else 80
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or default_port

    async def _listen(self) -> Listener:
        return await asyncio.start_server(self._handle, self.host, self.requested_port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        if self.conditions.resetting(self.elapsed()):
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return

        def abort() -> None:
            writer.transport.abort()
            up_writer.transport.abort()

        pair = self.open_pair(Client(str(host), int(port)), abort)
        try:
            await asyncio.gather(self._pump(pair, "up", reader, up_writer),
                                 self._pump(pair, "down", up_reader, writer),
                                 return_exceptions=True)
        finally:
            self.close_pair(pair)
            abort()

    async def _pump(self, pair: Pair, direction: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """Copy ``reader`` to ``writer`` through the link; EOF is passed on after the bytes."""
        async def deliver(data: bytes) -> None:
            # A peer reset must not kill the queue's writer: the reader sees it and aborts.
            with contextlib.suppress(ConnectionError):
                writer.write(data)
                await writer.drain()

        queue: DeliveryQueue[bytes] = DeliveryQueue(deliver)
        link = pair.up if direction == "up" else pair.down
        try:
            while data := await reader.read(_READ_SIZE):
                self.refresh(pair)
                if link.passthrough and queue.idle:
                    self.metrics.passed(direction, len(data))
                    writer.write(data)
                    await writer.drain()
                    continue
                (packet,) = self.shape(pair, direction, len(data)).deliveries
                queue.put(self.loop_time(packet.at), data)
            await queue.drain(_DRAIN_TIMEOUT)
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pair.abort()
        finally:
            queue.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
