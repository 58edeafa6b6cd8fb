"""Network metrics from samples: RTT, jitter, clock offset, rates, sequence gaps. No I/O.

The driver feeds in what it observed together with the time it observed it;
this module only does arithmetic, so every number is exact in tests.

* **RTT** from ``sys.ping`` round trips: the last sample, the minimum, and a
  smoothed RTT, an EWMA with gain 1/8 as TCP's SRTT (RFC 6298 §2).
* **Jitter**: the mean deviation of consecutive RTTs with gain 1/16, as the
  interarrival jitter of RTP (RFC 3550 §6.4.1).
* **Clock offset** (server − client, seconds), NTP-style: each ping gives
  ``server_time − (sent_at + received_at) / 2``; of the last 8 samples, the one
  with the smallest RTT is trusted, since it had the least queueing to make the
  two legs unequal (NTP's clock filter, RFC 5905 §10).
* **Rates**: WebSocket messages and payload bytes in and out per second over a
  sliding window, and totals.
* **Sequence gaps**: :meth:`NetStats.observe_sequence` is the hook for server
  notifications that carry a stream position (the recovery work): a jump past
  ``last + 1`` is a gap, a number not above the last one a duplicate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_RATE_WINDOW",
    "JITTER_GAIN",
    "MIN_RTO",
    "OFFSET_SAMPLES",
    "RTT_GAIN",
    "NetSnapshot",
    "NetStats",
    "SequenceGap",
    "jitter_step",
]

RTT_GAIN = 1 / 8  # RFC 6298 §2 (alpha)
JITTER_GAIN = 1 / 16  # RFC 3550 §6.4.1
OFFSET_SAMPLES = 8  # RFC 5905 §10 keeps eight samples in its clock filter
DEFAULT_RATE_WINDOW = 2.0  # seconds: smooth enough to read, short enough to follow a spike
MIN_RTO = 0.2  # s: Linux's TCP_RTO_MIN; RFC 6298 §2.4's 1 s is longer than a game can wait
RTO_K = 4  # RFC 6298 §2.3


def jitter_step(jitter: float, change: float) -> float:
    """The jitter estimate after one more sample whose transit (or RTT) changed by
    ``change`` from the last: ``J += (|D| - J) / 16`` (RFC 3550 §6.4.1)."""
    return jitter + (abs(change) - jitter) * JITTER_GAIN


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Notifications ``expected`` .. ``received - 1`` of ``stream`` never arrived."""

    stream: Hashable
    expected: int
    received: int

    @property
    def missing(self) -> int:
        return self.received - self.expected


@dataclass(frozen=True, slots=True, kw_only=True)
class NetSnapshot:
    """Every number at one instant; RTTs and offset in seconds, None before a ping."""

    rtt: float | None
    srtt: float | None
    rtt_min: float | None
    jitter: float
    clock_offset: float | None
    pings: int
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    messages_in_per_s: float
    messages_out_per_s: float
    bytes_in_per_s: float
    bytes_out_per_s: float
    sequence_gaps: int
    missing: int
    duplicates: int

    def retransmission_timeout(self) -> float | None:
        """How long a reply may take before it is presumed lost (RFC 6298 §2.3):
        ``srtt + 4 × jitter``, the mean deviation of the RTT standing for RTTVAR, and at
        least :data:`MIN_RTO`; None before the first ping."""
        if self.srtt is None:
            return None
        return max(MIN_RTO, self.srtt + RTO_K * self.jitter)


@dataclass(slots=True)
class _Direction:
    messages: int = 0
    bytes: int = 0
    recent: deque[tuple[float, int]] = field(default_factory=deque)

    def record(self, nbytes: int, now: float) -> None:
        self.messages += 1
        self.bytes += nbytes
        self.recent.append((now, nbytes))

    def rates(self, now: float, window: float) -> tuple[float, float]:
        while self.recent and self.recent[0][0] <= now - window:
            self.recent.popleft()
        return len(self.recent) / window, sum(n for _, n in self.recent) / window


class NetStats:
    """Accumulates samples; :meth:`snapshot` turns them into numbers."""

    def __init__(self, *, window: float = DEFAULT_RATE_WINDOW) -> None:
        self.window = window
        self.rtt: float | None = None
        self.srtt: float | None = None
        self.rtt_min: float | None = None
        self.jitter = 0.0
        self.pings = 0
        self._offsets: deque[tuple[float, float]] = deque(maxlen=OFFSET_SAMPLES)
        self._in = _Direction()
        self._out = _Direction()
        self._last_seq: dict[Hashable, int] = {}
        self.sequence_gaps = 0
        self.missing = 0
        self.duplicates = 0

    def observe_ping(self, sent_at: float, received_at: float, server_time: float) -> float | None:
        """Take one ping (times in seconds); return its RTT, or None if the clock stepped back."""
        rtt = received_at - sent_at
        if rtt < 0:
            return None
        if self.rtt is not None:
            self.jitter = jitter_step(self.jitter, rtt - self.rtt)
        self.srtt = rtt if self.srtt is None else self.srtt + (rtt - self.srtt) * RTT_GAIN
        self.rtt_min = rtt if self.rtt_min is None else min(self.rtt_min, rtt)
        self.rtt = rtt
        self.pings += 1
        self._offsets.append((rtt, server_time - (sent_at + received_at) / 2))
        return rtt

    @property
    def clock_offset(self) -> float | None:
        """Server clock minus client clock, from the best recent ping (seconds)."""
        if not self._offsets:
            return None
        return min(self._offsets)[1]

    def record_in(self, nbytes: int, now: float) -> None:
        """One WebSocket message of ``nbytes`` payload bytes arrived at ``now``."""
        self._in.record(nbytes, now)

    def record_out(self, nbytes: int, now: float) -> None:
        """One WebSocket message of ``nbytes`` payload bytes was written at ``now``."""
        self._out.record(nbytes, now)

    def observe_sequence(self, stream: Hashable, seq: int) -> SequenceGap | None:
        """Note notification ``seq`` of ``stream``; return the gap it reveals, if any."""
        last = self._last_seq.get(stream)
        if last is not None and seq <= last:
            self.duplicates += 1
            return None
        self._last_seq[stream] = seq
        if last is None or seq == last + 1:
            return None
        self.sequence_gaps += 1
        self.missing += seq - last - 1
        return SequenceGap(stream, last + 1, seq)

    def snapshot(self, now: float) -> NetSnapshot:
        """All the numbers as of ``now`` (rates cover ``(now - window, now]``)."""
        msgs_in, bytes_in = self._in.rates(now, self.window)
        msgs_out, bytes_out = self._out.rates(now, self.window)
        return NetSnapshot(
            rtt=self.rtt, srtt=self.srtt, rtt_min=self.rtt_min, jitter=self.jitter,
            clock_offset=self.clock_offset, pings=self.pings,
            messages_in=self._in.messages, messages_out=self._out.messages,
            bytes_in=self._in.bytes, bytes_out=self._out.bytes,
            messages_in_per_s=msgs_in, messages_out_per_s=msgs_out,
            bytes_in_per_s=bytes_in, bytes_out_per_s=bytes_out,
            sequence_gaps=self.sequence_gaps, missing=self.missing,
            duplicates=self.duplicates,
        )
