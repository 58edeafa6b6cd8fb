"""A token bucket: how much may go now, and how long until more may. No I/O, no clock of its own.

One shape serves both directions of a connection: the gateway's outbound
byte budget (``--outbound-rate 32KiB/s``: tokens are bytes) and its inbound
call rate (``--inbound-rate 50/s``: tokens are calls). The bucket holds at
most ``burst`` tokens and earns ``rate`` per second. A taker that must never
wait (a reply) :meth:`charge`\\ s it into debt; what may wait (a queued
notification) asks :meth:`wait` first, so debt is repaid before anything
else goes and the long-run rate holds (RFC 2697's single-rate bucket, with
debt instead of a red colour).

Times are the caller's clock readings (seconds), so tests step them by hand.
"""

from __future__ import annotations

__all__ = ["Bucket"]


class Bucket:
    """``burst`` tokens at most, earned at ``rate`` per second; starts full."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, *, rate: float, burst: float, now: float) -> None:
        if not rate > 0 or not burst > 0:
            raise ValueError(f"a bucket needs a rate and a burst above 0, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def tokens(self, now: float) -> float:
        """Tokens now (below 0 while in debt)."""
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        return self._tokens

    def charge(self, amount: float, now: float) -> None:
        """Take ``amount`` whatever is left: the bucket may go into debt."""
        self._tokens = self.tokens(now) - amount

    def wait(self, now: float) -> float:
        """Seconds until the bucket holds a token again (0: something may go now)."""
        tokens = self.tokens(now)
        return 0.0 if tokens > 0 else (1e-9 - tokens) / self.rate

    def take(self, amount: float, now: float) -> float:
        """Take ``amount`` if the bucket holds it (0.0), else take nothing and return the
        seconds until it will (an inbound call over its rate, told when to retry)."""
        tokens = self.tokens(now)
        if tokens >= amount:
            self._tokens = tokens - amount
            return 0.0
        return (amount - tokens) / self.rate
