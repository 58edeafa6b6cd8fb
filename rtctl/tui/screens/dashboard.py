"""Dashboard: is the gateway up, how busy is it, how far away is it, what went wrong.

Numbers come from the gateway's own metrics when it is embedded, from the
tap feed and the observer's netstats otherwise; the simulator line shows
what the link is doing to every client right now. It redraws as the tap
brings traffic, as the observer's state changes, as the lag switch moves and
with each sample of the rate and the RTT. Once the observer's pings go
unanswered (an outage keeps the socket open), the status says so and the
last RTT is marked stale (:meth:`~rtctl.tui.session.Session.sample`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from rtctl.tui.screens.base import LiveScreen, milliseconds
from rtctl.tui.stack import Stack

__all__ = ["DashboardScreen"]


def _gateway_lines(stack: Stack) -> list[str]:
    gateway = stack.gateway
    if gateway is None:
        return ["gateway    attached: counts from the tap"]
    metrics = gateway.metrics
    errors = sum(metrics.rpc_errors.values())
    return [f"gateway    {'ready' if gateway.ready else 'not ready'} at {gateway.url}",
            f"conns      {len(gateway.registry)} open, {metrics.connections_opened} opened",
            f"messages   {metrics.messages_in} in, {metrics.messages_out} out, "
            f"{errors} error replies"]


def _simulator_line(stack: Stack, lag_switch: bool) -> str:
    proxy = stack.proxy
    if proxy is None:
        return "simulator  not embedded"
    lost = sum(proxy.metrics.dropped.values())
    outage = "  OUTAGE (lag switch)" if lag_switch else ""
    return f"simulator  {proxy.conditions.base.describe()}; {lost} dropped{outage}"


def _observer_path(stack: Stack | None) -> str:
    """Which way the TUI's own pings go: through the embedded simulator only in the demo."""
    if stack is None:
        return "the TUI's observer"
    if stack.proxy is not None:
        return "observer through the simulator"
    return "observer to the gateway"


class DashboardScreen(LiveScreen):
    """Status, traffic, latency and errors at a glance."""

    MODE = "dashboard"
    FOLLOWS = ("status", "tapped", "sampled", "link")

    def body(self) -> ComposeResult:
        yield Static(id="summary")
        yield Static(id="rtt-label", classes="label")
        yield Sparkline([], id="rtt")
        yield Static(id="rate-label", classes="label")
        yield Sparkline([], id="rate")

    def update_view(self) -> None:
        session = self.session
        stack = session.stack
        lines = [f"status     {session.status}"]
        if stack is not None:
            stats = stack.observer.netstats()
            lines += _gateway_lines(stack)
            lines.append(f"latency    RTT {milliseconds(stats.rtt)}{session.stale}, "
                         f"smoothed {milliseconds(stats.srtt)}, "
                         f"jitter {milliseconds(stats.jitter)}")
            lines.append(_simulator_line(stack, session.lag_switch))
            bot_errors = stack.bots.errors if stack.bots is not None else 0
            lines.append(f"errors     {session.feed.errors} on the tap, "
                         f"{bot_errors} failed bot calls")
        self.query_one("#summary", Static).update("\n".join(lines))
        rtt = session.rtt_ms.last
        self.query_one("#rtt-label", Static).update(
            f"RTT (ms), {_observer_path(stack)}: "
            + ("–" if rtt is None else f"{rtt:.1f}") + session.stale)
        self.query_one("#rtt", Sparkline).data = list(session.rtt_ms.values)
        rate = session.rate.last
        self.query_one("#rate-label", Static).update(
            "frames per second through the gateway: " + ("–" if rate is None else f"{rate:.0f}"))
        self.query_one("#rate", Sparkline).data = list(session.rate.values)
