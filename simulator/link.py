"""One direction of a shaped link: message (or bytes) and ``now`` in, delivery times out.

:class:`Link` runs the impairments of :mod:`simulator.impairments` in order
and then keeps order: a delivery never comes before the one scheduled ahead of
it, except a message :class:`~simulator.impairments.Reorder` held back on
purpose. So jitter never reorders here, unlike netem without ``rate``: over a
WebSocket, messages ride one TCP stream, which delivers in order, and a game
that wants reordering asks for ``reorder``.

In stream (tcp) mode a chunk of bytes is cut into MSS-sized segments, each
suffers the link on its own, and the chunk is delivered when its last segment
arrives: a retransmitted segment holds back every byte behind it (head-of-line
blocking), and no byte is ever lost.

Outages (:class:`~simulator.scenario.Blackhole` windows) drop every message sent
inside them; in stream mode the segment is retransmitted with backoff until an
attempt falls after the window.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.impairments import REGISTRY, Impairment, Packet, retransmit, rto_for
from simulator.spec import DirectionSpec

__all__ = ["MSS", "Link", "Outcome"]

MSS = 1448  # bytes of payload in one TCP segment on Ethernet with timestamps


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the link did to one message: when each copy arrives, or why it was dropped."""

    sent_at: float
    deliveries: tuple[Packet, ...]
    dropped: str | None = None  # the impairment that dropped it: "loss", "bandwidth", "outage"

    @property
    def delay(self) -> float:
        """Seconds until the first copy arrives (0 when dropped)."""
        return self.deliveries[0].at - self.sent_at if self.deliveries else 0.0

    @property
    def duplicated(self) -> bool:
        return len(self.deliveries) > 1

    @property
    def reordered(self) -> bool:
        return any(p.reordered for p in self.deliveries)

    @property
    def retransmits(self) -> int:
        return sum(p.retransmits for p in self.deliveries)


class Link:
    """One direction's impairments and its in-order delivery clock."""

    def __init__(self, spec: DirectionSpec = DirectionSpec(), *, rng: random.Random,
                 stream: bool = False) -> None:
        self.stream = stream
        self._rng = rng
        self._last = 0.0  # the latest in-order delivery scheduled
        self._blackholes: tuple[tuple[float, float], ...] = ()
        self.configure(spec)

    def configure(self, spec: DirectionSpec,
                  blackholes: Sequence[tuple[float, float]] = ()) -> None:
        """Apply a new spec and outage windows ``(start, end)``; the delivery order is kept."""
        self.spec = spec
        self._blackholes = tuple(blackholes)
        self._stages: list[Impairment] = [
            stage for cls in REGISTRY.values()
            if (stage := cls.build(spec, self._rng, stream=self.stream)) is not None]
        self._rto = rto_for(spec)

    @property
    def passthrough(self) -> bool:
        """True when nothing can happen to a message, so it may skip the scheduler."""
        return not self._stages and not self._blackholes

    def _dark(self, t: float) -> bool:
        return any(start <= t < end for start, end in self._blackholes)

    def _run(self, packet: Packet) -> tuple[list[Packet], str | None]:
        """The packets that come out, or none and the name of the stage that dropped it."""
        packets = [packet]
        for stage in self._stages:
            packets = [out for p in packets for out in stage.apply(p)]
            if not packets:
                return packets, stage.name
        return packets, None

    def send(self, size: int, now: float) -> Outcome:
        """Pass a message (or, in stream mode, a chunk) of ``size`` bytes sent at ``now``."""
        if self.stream:
            return self._send_stream(size, now)
        if self._dark(now):
            return Outcome(now, (), "outage")
        packets, dropped = self._run(Packet(size, now))
        if dropped:
            return Outcome(now, (), dropped)
        ordered = []
        for packet in sorted(packets, key=lambda p: p.at):
            if not packet.reordered:
                if packet.at < self._last:
                    packet = Packet(packet.size, self._last, packet.copy)
                self._last = packet.at
            ordered.append(packet)
        return Outcome(now, tuple(ordered))

    def _send_stream(self, size: int, now: float) -> Outcome:
        last, retransmits = now, 0
        for offset in range(0, max(size, 1), MSS):
            segment = Packet(min(MSS, size - offset), now)
            if self._dark(now):
                segment = retransmit(segment, self._rto, self._dark)
            (segment,), _ = self._run(segment)
            retransmits += segment.retransmits
            last = max(last, segment.at)
        self._last = max(self._last, last)
        return Outcome(now, (Packet(size, self._last, retransmits=retransmits),))
