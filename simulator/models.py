"""Pure, seeded impairment models: delay distributions, loss processes, a token bucket.

Sans-I/O: every model takes its ``random.Random`` at construction and the time
(``now``, in seconds on any monotonic clock) as an argument, so tests are exact
and seeded. The semantics follow tc-netem(8) where it defines them:

* delay ``TIME JITTER CORRELATION distribution {uniform|normal|pareto|paretonormal}``,
  uniform being netem's default when jitter is given;
* loss ``random P`` (:class:`BernoulliLoss`) and ``gemodel p r 1-h 1-k``
  (:class:`GilbertElliottLoss`), with netem's transition-then-decide order;
* ``rate`` as a token bucket (tc-tbf(8) ``rate``/``burst``/``limit``), so a
  message waits for tokens behind the ones already queued, and a full queue drops.

One deliberate difference: netem correlates delay by mixing each new uniform
draw with the last one, which is known to distort the configured distribution.
Here correlation is an AR(1) Gaussian process mapped through the normal CDF
(a Gaussian copula), so successive delays are correlated *and* their marginal
distribution stays exactly the one configured.
"""

from __future__ import annotations

import math
import random
from collections import deque
from statistics import NormalDist

__all__ = [
    "DEFAULT_BURST",
    "DISTRIBUTIONS",
    "BernoulliLoss",
    "DelaySampler",
    "GilbertElliottLoss",
    "TokenBucket",
    "unit_quantile",
]

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
DEFAULT_BURST = 1500  # bytes: one Ethernet MTU, tc-tbf's smallest sensible burst

_STD_NORMAL = NormalDist()
_PARETO_ALPHA = 3.0  # the shape of iproute2's pareto table
_PARETO_XM = 2 / math.sqrt(3)  # scale giving a standard deviation of 1 at alpha = 3
_PARETO_MEAN = _PARETO_ALPHA * _PARETO_XM / (_PARETO_ALPHA - 1)
_U_EPSILON = 1e-12  # keeps inverse CDFs finite at the ends


def unit_quantile(distribution: str, u: float) -> float:
    """The ``u`` quantile of ``distribution`` scaled so that jitter multiplies it.

    ``uniform`` spans -1..1 (delay ± jitter, as netem); ``normal`` and ``pareto``
    have mean 0 and standard deviation 1 (jitter is sigma); ``paretonormal`` is
    iproute2's table: a quarter normal plus three quarters pareto at the same
    quantile, so its standard deviation is 1 too.
    """
    if distribution == "uniform":
        return 2 * u - 1
    if distribution == "normal":
        return _STD_NORMAL.inv_cdf(u)
    if distribution == "pareto":
        return _PARETO_XM * math.pow(1 - u, -1 / _PARETO_ALPHA) - _PARETO_MEAN
    if distribution == "paretonormal":
        return 0.25 * unit_quantile("normal", u) + 0.75 * unit_quantile("pareto", u)
    raise ValueError(f"unknown delay distribution {distribution!r}; use one of {DISTRIBUTIONS}")


class DelaySampler:
    """Delays ``latency + jitter × X`` with X from ``distribution``, never below zero.

    ``correlation`` (0..1) is the lag-1 correlation of the underlying Gaussian
    process: 0 draws each delay independently, 0.9 makes delays drift slowly.
    """

    def __init__(self, *, latency: float, jitter: float = 0.0, distribution: str = "uniform",
                 correlation: float = 0.0, rng: random.Random) -> None:
        unit_quantile(distribution, 0.5)  # reject an unknown name now, not at the first message
        if not 0.0 <= correlation < 1.0:
            raise ValueError(f"delay correlation must be in [0, 1), got {correlation}")
        self.latency = latency
        self.jitter = jitter
        self.distribution = distribution
        self.correlation = correlation
        self._rng = rng
        self._innovation = math.sqrt(1 - correlation * correlation)
        self._z = rng.gauss(0.0, 1.0)

    def sample(self) -> float:
        """The next delay in seconds."""
        if not self.jitter:
            return self.latency
        self._z = self.correlation * self._z + self._innovation * self._rng.gauss(0.0, 1.0)
        u = min(max(_STD_NORMAL.cdf(self._z), _U_EPSILON), 1 - _U_EPSILON)
        return max(0.0, self.latency + self.jitter * unit_quantile(self.distribution, u))


class BernoulliLoss:
    """netem ``loss random P``: each message is lost with probability ``p``, independently."""

    def __init__(self, p: float, *, rng: random.Random) -> None:
        self.p = p
        self._rng = rng

    def lost(self) -> bool:
        return self._rng.random() < self.p


class GilbertElliottLoss:
    """netem ``loss gemodel p r 1-h 1-k``: a two-state Markov chain of good and bad periods.

    ``p`` is P(good → bad), ``r`` P(bad → good), ``loss_bad`` (1-h) the loss
    probability in the bad state and ``loss_good`` (1-k) in the good one. Each
    message first moves the chain, then is lost by the new state's probability,
    as netem's ``loss_gilb_ell`` does. With the defaults (1-h = 1, 1-k = 0) losses
    come in bursts of mean length ``1 / r`` and the long-run loss rate is
    ``p / (p + r)``.
    """

    def __init__(self, p: float, r: float, loss_bad: float = 1.0, loss_good: float = 0.0, *,
                 rng: random.Random) -> None:
        if not (0 < p <= 1 and 0 < r <= 1):
            raise ValueError("gemodel p and r must be in (0, 1]")
        self.p, self.r, self.loss_bad, self.loss_good = p, r, loss_bad, loss_good
        self.bad = False
        self._rng = rng

    @property
    def stationary_loss(self) -> float:
        """The long-run fraction of messages lost."""
        in_bad = self.p / (self.p + self.r)
        return in_bad * self.loss_bad + (1 - in_bad) * self.loss_good

    def lost(self) -> bool:
        rng = self._rng
        if self.bad:
            if rng.random() < self.r:
                self.bad = False
        elif rng.random() < self.p:
            self.bad = True
        return rng.random() < (self.loss_bad if self.bad else self.loss_good)


class TokenBucket:
    """A rate limit with a FIFO queue: tc-tbf(8) ``rate``, ``burst`` and ``limit``.

    :meth:`depart` answers when a message of ``size`` bytes arriving at ``now``
    leaves the bucket: at once while tokens last, else when enough have been
    earned at ``rate`` after everything queued ahead of it. A message that would
    push the bytes waiting past ``limit`` is dropped (``None``), as a real
    router's tail drop. A message larger than ``burst`` still passes, in one go,
    once the bucket has earned its size.
    """

    def __init__(self, *, rate: float, limit: float, burst: int = DEFAULT_BURST) -> None:
        if rate <= 0:
            raise ValueError(f"bandwidth must be positive, got {rate} bit/s")
        self.rate = rate
        self.limit = limit
        self.burst = burst
        self._bytes_per_s = rate / 8
        self._tokens = float(burst)
        self._t = -math.inf  # when the tokens were last counted
        self._queue: deque[tuple[float, int]] = deque()  # (departure, size) not yet gone
        self.queued = 0  # bytes waiting

    def depart(self, size: int, now: float) -> float | None:
        """The departure time of a ``size``-byte message arriving at ``now``, or None if dropped."""
        queue = self._queue
        while queue and queue[0][0] <= now:
            self.queued -= queue.popleft()[1]
        if queue and self.queued + size > self.limit:
            return None
        start = max(now, self._t)
        cap = max(self.burst, size)
        tokens = min(cap, self._tokens + (start - self._t) * self._bytes_per_s)
        if tokens < size:
            start += (size - tokens) / self._bytes_per_s
            tokens = size
        self._tokens = tokens - size
        self._t = start
        if start > now:
            queue.append((start, size))
            self.queued += size
        return start
