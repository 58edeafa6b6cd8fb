"""One run of the TUI: the stack once it is up, the tap feed, and the sampled numbers.

Every screen gets the same :class:`Session`. The app fills it: the stack
when its start-up worker finishes, the feed from its tap worker, and one
:meth:`Session.sample` per sampling period, which is also the only place the
per-second rates are computed, so every screen shows the same numbers. The
session itself knows nothing of Textual; the app's reactives say when a part
of it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtctl.tui.feed import Feed, Samples
from rtctl.tui.stack import Stack

__all__ = ["Session"]


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

    @property
    def status(self) -> str:
        """One line: starting, failed (and why), or where the observer is connected."""
        if self.problem is not None:
            return f"not running: {self.problem}"
        if self.stack is None:
            return "starting…"
        where = "demo, embedded" if self.stack.embedded else "attached"
        return f"{self.stack.observer.state.value} to {self.stack.url} ({where})"

    def sample(self) -> None:
        """Take one sample of each number (the app calls this once per period)."""
        if self.stack is None:
            return
        self.rate.add(self.feed.frames_since_last() / self.period)
        rtt = self.stack.observer.netstats().rtt
        if rtt is not None:
            self.rtt_ms.add(rtt * 1000)
