"""Profiler: where the gateway's time goes, per method and per stage.

The stage breakdown (decode, handler, encode, write, with the event loop's
lag and the outbound queues) is the gateway's sampled ``GET /profile``, read
with :func:`rtctl.profiler.report.fetch` and drawn with
:func:`~rtctl.profiler.report.breakdown`, exactly as ``rtctl profile`` shows
it; it needs an admin token, which the demo has. Under it, from an embedded
gateway, every call's time (:attr:`rtctl.gateway.metrics.GatewayMetrics.calls`,
``rtctl_rpc_duration_seconds``), with bucket bounds as quantiles, as
Prometheus' ``histogram_quantile`` would at best say. ``/profile`` is a network
read, polled every few seconds; the call table follows the tap (the app's
``tapped``), since every call is a frame on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from rtctl.histograms import BucketCounts
from rtctl.profiler.report import ProfileFailed, breakdown, fetch
from rtctl.tui.screens.base import LiveScreen

__all__ = ["ProfilerScreen", "profile_rows"]

_EVERY = 2.0  # seconds between two reads of /profile
_CALLS = "every call, decoded request → reply ready (rtctl_rpc_duration_seconds):"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return "> 2.5s" if seconds == float("inf") else f"≤ {seconds * 1000:g} ms"


def profile_rows(
        calls: Mapping[str, BucketCounts]) -> list[tuple[str, str, str, str, str, str]]:
    """(method, calls, mean, p50, p95, p99) per method, the busiest first."""
    rows = []
    for method, histogram in sorted(calls.items(), key=lambda kv: (-kv[1].count, kv[0])):
        count = histogram.count
        mean = f"{histogram.total / count * 1000:.3f} ms" if count else "–"
        rows.append((method, str(count), mean, _ms(histogram.quantile(0.5)),
                     _ms(histogram.quantile(0.95)), _ms(histogram.quantile(0.99))))
    return rows


class ProfilerScreen(LiveScreen):
    """The gateway's stage breakdown, and its per-method call times."""

    MODE = "profiler"
    FOLLOWS = ("tapped",)
    BINDINGS: ClassVar[list[BindingType]] = [("r", "refresh", "Refresh")]

    document: dict[str, Any] | None = None  # the last /profile answer

    def body(self) -> ComposeResult:
        with VerticalScroll(id="profiler-scroll"):
            yield Static("reading GET /profile…", id="stages")
            yield Static(_CALLS, classes="label")
            table: DataTable[str] = DataTable(id="calls", cursor_type="row",
                                              zebra_stripes=True)
            table.add_columns("method", "calls", "mean", "p50", "p95", "p99")
            yield table

    def on_mount(self) -> None:
        self.set_interval(_EVERY, self.action_refresh)

    def on_screen_resume(self) -> None:  # LiveScreen's own handler redraws the table
        self.action_refresh()

    def action_refresh(self) -> None:
        if self.is_current:
            self._fetch()

    @work(exclusive=True, group="profile")
    async def _fetch(self) -> None:
        stack = self.session.stack
        if stack is None:
            return
        try:
            document = await asyncio.to_thread(fetch, stack.admin_url, stack.token, reset=False)
        except ProfileFailed as exc:
            self.query_one("#stages", Static).update(f"no stage breakdown: {exc}")
            return
        self.document = document
        self.query_one("#stages", Static).update(breakdown(document))

    def update_view(self) -> None:
        stack = self.session.stack
        if stack is not None and stack.gateway is not None:
            self.show(stack.gateway.metrics.calls)

    def show(self, calls: Mapping[str, BucketCounts]) -> None:
        """Fill the per-method table from histograms by method."""
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(profile_rows(calls))
