"""The impairments, each a tiny class behind one interface and registered by name.

As Toxiproxy's toxics: an :class:`Impairment` sees one :class:`Packet` (a
message in ws mode, a TCP segment in tcp mode) and returns what goes on: an
empty list drops it, two packets duplicate it, a later ``at`` delays it. The
:class:`~simulator.link.Link` chains them in :data:`REGISTRY` order, which is
tc-netem(8)'s order: loss, duplicate, rate, delay, then reorder.

``stream=True`` builds the tcp-mode variant: TCP never loses bytes, so a lost
segment becomes a retransmission stall (:func:`retransmit`) and duplicates and
reorders, which TCP hides, are not built at all.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

from simulator.models import BernoulliLoss, DelaySampler, GilbertElliottLoss, TokenBucket
from simulator.spec import DirectionSpec

__all__ = [
    "MAX_RETRANSMITS",
    "REGISTRY",
    "REORDER_MIN_HOLD",
    "RTO_MIN",
    "Impairment",
    "Packet",
    "register",
    "retransmit",
    "rto_for",
]

RTO_MIN = 0.2  # seconds: Linux's TCP_RTO_MIN (RFC 6298 §2.4 allows it below 1 s)
MAX_RETRANSMITS = 8  # backoffs counted before a stall stops growing (RTO × 2⁸)
REORDER_MIN_HOLD = 0.010  # a reordered message is held back at least this long
DEFAULT_QUEUE_SECONDS = 1.0  # with no queue size given, hold this long at the rate


@dataclass(frozen=True, slots=True)
class Packet:
    """A message or segment on its way: ``at`` is when it reaches the next stage."""

    size: int
    at: float
    copy: bool = False
    reordered: bool = False
    retransmits: int = 0


class Impairment(ABC):
    """One effect on packets; built from a :class:`DirectionSpec` when it asks for it."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def build(cls, spec: DirectionSpec, rng: random.Random, *, stream: bool
              ) -> Impairment | None:
        """The impairment ``spec`` configures, or None when it configures none."""

    @abstractmethod
    def apply(self, packet: Packet) -> list[Packet]:
        """What becomes of ``packet``: nothing (dropped), itself changed, or copies."""


REGISTRY: dict[str, type[Impairment]] = {}


def register(cls: type[Impairment]) -> type[Impairment]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    REGISTRY[cls.name] = cls
    return cls


def rto_for(spec: DirectionSpec) -> float:
    """The retransmission timeout a TCP sender settles on: SRTT + 4 RTTVAR, at least 200 ms."""
    return max(RTO_MIN, 2 * spec.latency + 4 * spec.jitter)


def retransmit(packet: Packet, rto: float, lost: Callable[[float], bool]) -> Packet:
    """Resend ``packet`` after RTO, doubling it each time (RFC 6298 §5.5), until not lost.

    ``lost(t)`` says whether an attempt made at ``t`` is lost again.
    """
    at, count = packet.at, packet.retransmits
    while True:
        at += rto
        count += 1
        if count < MAX_RETRANSMITS:
            rto *= 2
        if not lost(at):
            return replace(packet, at=at, retransmits=count)


@register
class Loss(Impairment):
    """``loss random P`` or ``loss gemodel p r 1-h 1-k`` (tc-netem(8))."""

    name = "loss"

    def __init__(self, model: BernoulliLoss | GilbertElliottLoss, *, stream: bool,
                 rto: float) -> None:
        self.model = model
        self.stream = stream
        self.rto = rto

    @classmethod
    def build(cls, spec: DirectionSpec, rng: random.Random, *, stream: bool) -> Loss | None:
        if spec.gemodel:
            return cls(GilbertElliottLoss(*spec.gemodel, rng=rng), stream=stream, rto=rto_for(spec))
        if spec.loss:
            return cls(BernoulliLoss(spec.loss, rng=rng), stream=stream, rto=rto_for(spec))
        return None

    def apply(self, packet: Packet) -> list[Packet]:
        if not self.model.lost():
            return [packet]
        if self.stream:
            return [retransmit(packet, self.rto, lambda _t: self.model.lost())]
        return []


@register
class Duplicate(Impairment):
    """``duplicate P``: a second copy follows the first through the rest of the link."""

    name = "duplicate"

    def __init__(self, p: float, rng: random.Random) -> None:
        self.p = p
        self._rng = rng

    @classmethod
    def build(cls, spec: DirectionSpec, rng: random.Random, *, stream: bool
              ) -> Duplicate | None:
        return cls(spec.duplicate, rng) if spec.duplicate and not stream else None

    def apply(self, packet: Packet) -> list[Packet]:
        if self._rng.random() < self.p:
            return [packet, replace(packet, copy=True)]
        return [packet]


@register
class Bandwidth(Impairment):
    """``rate``: a token bucket whose queue turns a busy link into queueing delay.

    In tcp mode the queue is unbounded: TCP's sender keeps unsent bytes rather
    than losing them, and its congestion control settles on the rate.
    """

    name = "bandwidth"

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket

    @classmethod
    def build(cls, spec: DirectionSpec, rng: random.Random, *, stream: bool
              ) -> Bandwidth | None:
        if not spec.bandwidth:
            return None
        default = max(int(spec.bandwidth / 8 * DEFAULT_QUEUE_SECONDS), 16 * 1024)
        limit = math.inf if stream else (spec.queue or default)
        return cls(TokenBucket(rate=spec.bandwidth, limit=limit))

    def apply(self, packet: Packet) -> list[Packet]:
        departure = self.bucket.depart(packet.size, packet.at)
        return [] if departure is None else [replace(packet, at=departure)]


@register
class Delay(Impairment):
    """``delay TIME JITTER CORRELATION distribution D``: the path's propagation delay."""

    name = "delay"

    def __init__(self, sampler: DelaySampler) -> None:
        self.sampler = sampler

    @classmethod
    def build(cls, spec: DirectionSpec, rng: random.Random, *, stream: bool) -> Delay | None:
        if not (spec.latency or spec.jitter):
            return None
        return cls(DelaySampler(latency=spec.latency, jitter=spec.jitter,
                                distribution=spec.distribution, correlation=spec.correlation,
                                rng=rng))

    def apply(self, packet: Packet) -> list[Packet]:
        return [replace(packet, at=packet.at + self.sampler.sample())]


@register
class Reorder(Impairment):
    """``reorder P``: a message is held back so that the ones after it overtake it.

    netem sends a reordered packet *early* (it skips the delay), which does
    nothing on an undelayed link; here it arrives *late*, held back by the one-way
    latency (at least 10 ms), as a packet that took a slower path.
    """

    name = "reorder"

    def __init__(self, p: float, hold: float, rng: random.Random) -> None:
        self.p = p
        self.hold = hold
        self._rng = rng

    @classmethod
    def build(cls, spec: DirectionSpec, rng: random.Random, *, stream: bool) -> Reorder | None:
        if not spec.reorder or stream:
            return None
        return cls(spec.reorder, max(REORDER_MIN_HOLD, spec.latency), rng)

    def apply(self, packet: Packet) -> list[Packet]:
        if self._rng.random() < self.p:
            return [replace(packet, at=packet.at + self.hold, reordered=True)]
        return [packet]
