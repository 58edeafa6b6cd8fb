"""Profiler: where the gateway's time goes, per method and per stage.

The stage breakdown (decode, handler, encode, write, with the event loop's
lag and the outbound queues) is the gateway's sampled ``GET /profile``, read
with :func:`rtctl.profiler.report.fetch` and drawn with
:func:`~rtctl.profiler.report.breakdown`, exactly as ``rtctl profile`` shows
it; it needs an admin token, which the demo has. Under it, from an embedded
gateway, every call's time (:attr:`rtctl.gateway.metrics.GatewayMetrics.calls`,
``rtctl_rpc_duration_seconds``), with bucket bounds as quantiles, as
Prometheus' ``histogram_quantile`` would at best say. Last, the outboxes'
lanes as ``rtctl profile`` shows them (:mod:`rtctl.profiler.lanes`), from
``GET /metrics``: what waits now, and the window between two reads.
``/profile`` and ``/metrics`` are network reads, polled every few seconds;
the call table follows the tap (the app's ``tapped``), since every call is a
frame on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from rtctl.histograms import BucketCounts
from rtctl.profiler.lanes import LANE_COLUMNS, lane_rows, lane_title, lanes_between, quantile_text
from rtctl.profiler.report import ProfileFailed, breakdown, fetch, fetch_lanes
from rtctl.protocol.lanes import LaneStats
from rtctl.tui.screens.base import LiveScreen

__all__ = ["ProfilerScreen", "profile_rows"]

_EVERY = 2.0  # seconds between two reads of /profile and /metrics
_CALLS = "every call, decoded request → reply ready (rtctl_rpc_duration_seconds):"
_LANES = "outbox lanes: reading GET /metrics twice…"


def profile_rows(
        calls: Mapping[str, BucketCounts]) -> list[tuple[str, str, str, str, str, str]]:
    """(method, calls, mean, p50, p95, p99) per method, the busiest first."""
    rows = []
    for method, histogram in sorted(calls.items(), key=lambda kv: (-kv[1].count, kv[0])):
        count = histogram.count
        mean = f"{histogram.total / count * 1000:.3f} ms" if count else "–"
        p50, p95, p99 = (quantile_text(histogram, q) for q in (0.5, 0.95, 0.99))
        rows.append((method, str(count), mean, p50, p95, p99))
    return rows


class ProfilerScreen(LiveScreen):
    """The gateway's stage breakdown, its per-method call times and its outbox lanes."""

    MODE = "profiler"
    FOLLOWS = ("tapped",)
    BINDINGS: ClassVar[list[BindingType]] = [("r", "refresh", "Refresh")]

    document: dict[str, Any] | None = None  # the last /profile answer
    lanes: tuple[float, LaneStats] | None = None  # the last /metrics read: when, and its lanes

    def body(self) -> ComposeResult:
        with VerticalScroll(id="profiler-scroll"):
            yield Static("reading GET /profile…", id="stages")
            yield Static(_CALLS, classes="label")
            table: DataTable[str] = DataTable(id="calls", cursor_type="row",
                                              zebra_stripes=True)
            table.add_columns("method", "calls", "mean", "p50", "p95", "p99")
            yield table
            yield Static(_LANES, id="lanes-label", classes="label")
            lanes: DataTable[str] = DataTable(id="lanes", cursor_type="row", zebra_stripes=True)
            lanes.add_columns(*LANE_COLUMNS)
            yield lanes

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
        else:
            self.document = document
            self.query_one("#stages", Static).update(breakdown(document))
        try:  # /metrics needs no token: the lanes show even where /profile is refused
            lanes = await asyncio.to_thread(fetch_lanes, stack.admin_url)
        except ProfileFailed as exc:
            self.query_one("#lanes-label", Static).update(f"no outbox lanes: {exc}")
            return
        now = time.monotonic()
        if self.lanes is not None:
            then, before = self.lanes
            self.show_lanes(lanes_between(before, lanes), now - then)
        self.lanes = now, lanes

    def update_view(self) -> None:
        stack = self.session.stack
        if stack is not None and stack.gateway is not None:
            self.show(stack.gateway.metrics.calls)

    def show(self, calls: Mapping[str, BucketCounts]) -> None:
        """Fill the per-method table from histograms by method."""
        table = self.query_one("#calls", DataTable)
        table.clear()
        table.add_rows(profile_rows(calls))

    def show_lanes(self, window: LaneStats, seconds: float) -> None:
        """Fill the lane table from a window of ``seconds`` (:func:`lanes_between`)."""
        self.query_one("#lanes-label", Static).update(lane_title(seconds))
        table = self.query_one("#lanes", DataTable)
        table.clear()
        table.add_rows(lane_rows(window, seconds))
