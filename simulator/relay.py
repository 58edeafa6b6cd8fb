"""ws mode's data path: relay one direction's WebSocket frames unchanged, shaping messages.

After the handshake the proxy no longer speaks WebSocket itself: it cuts each
direction's bytes into frames (:class:`~simulator.frames.FrameParser`) and
forwards them as they arrived, masked from the client and unmasked from the
server (RFC 6455 §5.1), so nothing is unmasked, decoded or re-framed.

Impairments apply to whole messages: a text or binary frame and its
continuations up to FIN (§5.4). The link decides once per message:

* **straight through** when the link is clean and nothing is waiting in the
  :class:`~simulator.delivery.DeliveryQueue`: the message's frames are written
  as they are read, without scheduling, one write per read;
* **scheduled** otherwise: its frames are held until FIN, then the link drops,
  delays, duplicates or reorders the message as a whole. A live change that
  impairs the link takes effect at the next message; what is queued keeps its
  order, and later messages queue behind it even once the link is clean again.

Control frames (§5.5) are not impaired: pings and pongs are written at once,
between whole frames (§5.4 allows them inside a fragmented message), and a
close is written only after the messages in flight are delivered, so nothing
overtakes it. Frames after a close are discarded (§5.5.1). A duplicated client
message repeats its frames with the same masking key, which §5.3 asks to be
unpredictable; the server cannot tell.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from rtctl.protocol.tap import IN, OUT
from simulator.base import Pair, ShapingProxy
from simulator.delivery import DeliveryQueue
from simulator.frames import BINARY, CLOSE, TEXT, Frame, FrameError, FrameParser, frame_payload
from simulator.link import Outcome

__all__ = ["Relay", "fate"]

_READ_SIZE = 64 * 1024
_DRAIN_TIMEOUT = 5.0  # seconds to deliver what is in flight before a close or EOF


class Relay:
    """Frames from ``reader`` to ``writer`` through ``pair``'s link for ``direction``."""

    def __init__(self, proxy: ShapingProxy, pair: Pair, direction: str,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 fail: Callable[[FrameError], None]) -> None:
        self.proxy = proxy
        self.pair = pair
        self.direction = direction
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser(masked=direction == "up")
        self._fail = fail
        self._link = pair.up if direction == "up" else pair.down
        self._queue: DeliveryQueue[bytes] | None = None
        self._straight = True  # the open message goes straight through
        self._held: list[bytes] = []  # frames of the open scheduled message
        self._size = 0  # payload bytes of the open message
        self._tapped: list[bytes] | None = None  # its payload, unmasked, while the tap listens
        self._opcode = TEXT  # of the open message: the tap tells binary from text

    async def run(self) -> None:
        """Relay until EOF (passed on after what is in flight) or a close; fail on bad frames."""
        self._queue = queue = DeliveryQueue(self._deliver)
        try:
            while data := await self.reader.read(_READ_SIZE):
                close = self._forward(self.parser.feed(data))
                if close is not None:
                    await queue.drain(_DRAIN_TIMEOUT)
                    self.writer.write(close.data)
                    while await self.reader.read(_READ_SIZE):
                        pass
                    break
                await self.writer.drain()
            await queue.drain(_DRAIN_TIMEOUT)
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except FrameError as exc:
            self._fail(exc)
        except (ConnectionError, OSError):
            self.pair.abort()
        finally:
            queue.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.drain()

    def _forward(self, frames: list[Frame]) -> Frame | None:
        """Write or schedule ``frames``; a close frame stops it and is returned unsent."""
        proxy, direction, link, out = self.proxy, self.direction, self._link, []
        assert self._queue is not None
        proxy.refresh(self.pair)
        close, passed, passed_size = None, 0, 0
        for frame in frames:
            if frame.control:
                if frame.opcode == CLOSE:
                    close = frame
                    break
                out.append(frame.data)
                continue
            if frame.first:
                self._straight = link.passthrough and self._queue.idle
                self._size = 0
                self._opcode = frame.opcode
                self._tapped = [] if proxy.tap.active else None
            self._size += frame.length
            if self._tapped is not None:
                self._tapped.append(frame_payload(frame))
            if self._straight:
                out.append(frame.data)
                if frame.fin:
                    passed += 1
                    passed_size += self._size
                    if self._tapped is not None:
                        self._tap(None)
                continue
            self._held.append(frame.data)
            if frame.fin:
                message = b"".join(self._held)
                self._held.clear()
                outcome = proxy.shape(self.pair, direction, self._size)
                for packet in outcome.deliveries:
                    self._queue.put(proxy.loop_time(packet.at), message)
                if self._tapped is not None:
                    self._tap(fate(outcome))
        if passed:
            proxy.metrics.passed(direction, passed_size, passed)
        if out:
            self.writer.write(b"".join(out))
        return close

    def _tap(self, impairment: str | None) -> None:
        """Show the finished message on the tap, with what the link did to it."""
        if self._tapped is not None and self.proxy.tap.active:  # still listening
            self.proxy.tap.impaired_frame(self.pair, IN if self.direction == "up" else OUT,
                                          b"".join(self._tapped), impairment,
                                          self._opcode == BINARY)
        self._tapped = None

    async def _deliver(self, message: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            self.writer.write(message)
            await self.writer.drain()


def fate(outcome: Outcome) -> str | None:
    """What the link did to a message, in the inspector's words; None if it passed as is."""
    if outcome.dropped:
        return f"dropped ({outcome.dropped})"
    parts = []
    if outcome.delay >= 0.0005:
        parts.append(f"delayed {outcome.delay * 1000:.0f} ms")
    if outcome.reordered:
        parts.append("reordered")
    if outcome.duplicated:
        parts.append(f"duplicated ×{len(outcome.deliveries)}")
    return ", ".join(parts) or None
