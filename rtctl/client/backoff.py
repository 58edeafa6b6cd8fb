"""Reconnection backoff: exponential, capped, jittered; a pure schedule.

The delay before reconnection attempt ``n`` (1, 2, ...) is::

    nominal(n) = min(cap, base * multiplier ** (n - 1))
    delay(n)   = nominal(n) * (1 - jitter * u)          u uniform in [0, 1)

With the defaults (base 0.1 s, multiplier 2, cap 5 s, jitter 0.5) the nominal
sequence is 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, ... s and each delay lies in
the upper half of its nominal value ("equal jitter" in the AWS Architecture
Blog's "Exponential Backoff and Jitter", 2015): never above the cap, never a
zero wait, and a thousand clients dropped by one gateway restart spread over
half of each interval instead of arriving together. ``jitter=1`` is "full
jitter", ``jitter=0`` none (tests).

The attempt count goes back to zero only after a connection stayed up for
``reset_after`` seconds, so a gateway that accepts and at once drops a client
still sees that client slow down. Random numbers and time are passed in:
``random.Random(seed)`` and ``now`` make every schedule exact in tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rtctl.exceptions import ConfigError

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_CAP",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MULTIPLIER",
    "DEFAULT_RESET_AFTER",
    "Backoff",
    "BackoffSchedule",
]

DEFAULT_BASE = 0.1  # Colyseus starts at 100 ms; a restarted gateway is back in well under 1 s
DEFAULT_MULTIPLIER = 2.0
DEFAULT_CAP = 5.0  # Colyseus, Socket.IO and Phoenix all settle at 5 s
DEFAULT_JITTER = 0.5  # Socket.IO's ±50 %, kept below the nominal value so the cap holds
DEFAULT_MAX_ATTEMPTS: int | None = None  # a game keeps trying; the UI shows "reconnecting"
DEFAULT_RESET_AFTER = 10.0  # two caps' worth of stable connection forgives the past


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How long to wait before each reconnection attempt; ``max_attempts=0`` never retries."""

    base: float = DEFAULT_BASE
    multiplier: float = DEFAULT_MULTIPLIER
    cap: float = DEFAULT_CAP
    jitter: float = DEFAULT_JITTER
    max_attempts: int | None = DEFAULT_MAX_ATTEMPTS
    reset_after: float = DEFAULT_RESET_AFTER

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ConfigError(f"backoff needs 0 < base <= cap, got {self.base} and {self.cap}")
        if self.multiplier < 1:
            raise ConfigError(f"backoff multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"backoff jitter must be within 0..1, got {self.jitter}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ConfigError(f"max_attempts must be >= 0 or None, got {self.max_attempts}")
        if self.reset_after < 0:
            raise ConfigError(f"reset_after must be >= 0, got {self.reset_after}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt`` (from 1); nominal without ``rng``."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, got {attempt}")
        try:
            nominal = min(self.cap, self.base * self.multiplier ** (attempt - 1))
        except OverflowError:
            nominal = self.cap
        if rng is None:
            return nominal
        return nominal * (1 - self.jitter * rng.random())


class BackoffSchedule:
    """Counts attempts across connections and hands out the next delay."""

    def __init__(self, policy: Backoff, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self.attempts = 0
        self._connected_at: float | None = None

    def next_delay(self) -> float | None:
        """The wait before the next attempt, or None when ``max_attempts`` are spent."""
        limit = self.policy.max_attempts
        if limit is not None and self.attempts >= limit:
            return None
        self.attempts += 1
        return self.policy.delay(self.attempts, self._rng)

    def connected(self, now: float) -> None:
        """A connection opened at ``now``."""
        self._connected_at = now

    def disconnected(self, now: float) -> None:
        """The connection ended at ``now``; a stable one resets the attempt count."""
        if self._connected_at is not None and now - self._connected_at >= self.policy.reset_after:
            self.attempts = 0
        self._connected_at = None

    def reset(self) -> None:
        """Start over (a new connect() after the client gave up)."""
        self.attempts = 0
        self._connected_at = None
