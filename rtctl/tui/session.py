"""One run of the TUI: the stack once it is up, the tap feed, and the sampled numbers.

Every screen gets the same :class:`Session`. The app fills it: the stack
when its start-up worker finishes, the feed from its tap worker, and one
:meth:`Session.sample` per sampling period, which is also the only place the
per-second rates are computed, so every screen shows the same numbers. The
session itself knows nothing of Textual; the app's reactives say when a part
of it changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rtctl.client import ClientState
from rtctl.tui.feed import Feed, Samples
from rtctl.tui.stack import Stack

__all__ = ["SILENCE_FLOOR", "Session"]

SILENCE_FLOOR = 1.0  # seconds: RFC 6298 §2.4's lower bound on a retransmission timeout


@dataclass(eq=False)
class Session:
    """What the screens read; ``stack`` is None while starting or after start-up failed."""

    period: float  # seconds between two samples
    stack: Stack | None = None
    problem: str | None = None  # why there is no stack, in plain words
    feed: Feed = field(default_factory=Feed)
    rtt_ms: Samples = field(default_factory=Samples)  # the observer's last RTT per sample
    rate: Samples = field(default_factory=Samples)  # frames per second through the gateway
    lag_switch: bool = False  # the simulator's outage held on by the lag-switch key
    silent_for: float | None = None  # seconds without a ping answered, once overdue
    clock: Callable[[], float] = time.monotonic
    _pings: int = 0  # the observer's answered pings at the last sample
    _heard_at: float | None = None  # when that count last moved

    @property
    def status(self) -> str:
        """One line: starting, failed (and why), silent, or where the observer is connected.

        A socket can stay open through an outage while nothing comes back; its
        client still says ``connected``, so a silent link is named for what it is.
        """
        if self.problem is not None:
            return f"not running: {self.problem}"
        if self.stack is None:
            return "starting…"
        where = "demo, embedded" if self.stack.embedded else "attached"
        state = self.stack.observer.state
        if state is ClientState.CONNECTED and self.silent_for is not None:
            return (f"no answer from {self.stack.url} for {self.silent_for:.1f} s ({where}; "
                    "the connection is open, nothing comes back)")
        return f"{state.value} to {self.stack.url} ({where})"

    @property
    def stale(self) -> str:
        """`` (stale: …)`` after an RTT that no longer moves, else nothing."""
        if self.silent_for is None:
            return ""
        return f" (stale: no answer for {self.silent_for:.1f} s)"

    def sample(self) -> None:
        """Take one sample of each number (the app calls this once per period).

        The observer pings, waits for the answer, then waits ``ping_interval``:
        an answer is overdue once ``ping_interval`` and a retransmission timeout
        (SRTT + 4 × jitter, at least :data:`SILENCE_FLOOR`; RFC 6298 §2) have
        passed without one. From then on the last RTT is stale and no longer
        drawn as if it were measured.
        """
        stack = self.stack
        if stack is None:
            return
        self.rate.add(self.feed.frames_since_last() / self.period)
        stats = stack.observer.netstats()
        now = self.clock()
        if self._heard_at is None or stats.pings != self._pings:
            self._pings, self._heard_at = stats.pings, now
        overdue = stack.ping_interval + max(SILENCE_FLOOR,
                                            (stats.srtt or 0.0) + 4 * stats.jitter)
        silence = now - self._heard_at
        self.silent_for = silence if silence > overdue else None
        if stats.rtt is not None and self.silent_for is None:
            self.rtt_ms.add(stats.rtt * 1000)
