"""Snapshots of the screens that do not move on their own, at 80×24.

The app runs with a start that fails on purpose, so no clock, port or traffic
reaches the picture; the profiler is fed fixed histograms and lanes. Regenerate with
``pytest tests/tui --snapshot-update`` after a deliberate change, and look at
the SVGs in ``tests/tui/__snapshots__`` before committing them.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from rtctl.exceptions import ConfigError
from rtctl.gateway.metrics import RPC_BUCKETS
from rtctl.histograms import BucketCounts
from rtctl.protocol.lanes import Lane, LaneStats
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.screens import ProfilerScreen
from rtctl.tui.stack import Stack


async def _no_stack() -> Stack:
    raise ConfigError("snapshot test: nothing started")


def _app() -> DevtoolsApp:
    return DevtoolsApp(_no_stack, refresh=3600)  # no stack: nothing moves after the start


def test_dashboard_without_a_stack(snap_compare: Any) -> None:
    assert snap_compare(_app(), terminal_size=(80, 24))


def test_simulator_form(snap_compare: Any) -> None:
    assert snap_compare(_app(), press=["5"], terminal_size=(80, 24))


def test_profiler_breakdown(snap_compare: Any) -> None:
    calls = {"sys.ping": BucketCounts(RPC_BUCKETS), "room.publish": BucketCounts(RPC_BUCKETS)}
    for seconds in (0.00004, 0.00008, 0.0002, 0.0002):
        calls["sys.ping"].observe(seconds)
    for seconds in (0.0003, 0.0009, 0.004, 0.02, 0.3):
        calls["room.publish"].observe(seconds)

    async def feed(pilot: Pilot[None]) -> None:
        await pilot.press("6")
        screen = pilot.app.screen
        assert isinstance(screen, ProfilerScreen)
        screen.show(calls)

    assert snap_compare(_app(), run_before=feed, terminal_size=(80, 24))


def test_profiler_lanes(snap_compare: Any) -> None:
    window = LaneStats()
    events, chat, telemetry = window[Lane.EVENTS], window[Lane.CHAT], window[Lane.TELEMETRY]
    events.depth, events.depth_bytes, events.sent, events.sent_bytes = 12, 3_072, 400, 64_000
    chat.sent, chat.sent_bytes, chat.coalesced = 30, 2_400, 90
    telemetry.depth, telemetry.depth_bytes, telemetry.dropped = 200, 20_000, 1_500
    for seconds in (0.0004, 0.002, 0.002, 0.04):
        events.wait.observe(seconds)
    chat.wait.observe(0.3)

    async def feed(pilot: Pilot[None]) -> None:
        await pilot.press("6")
        screen = pilot.app.screen
        assert isinstance(screen, ProfilerScreen)
        screen.show_lanes(window, 2.0)

    assert snap_compare(_app(), run_before=feed, terminal_size=(80, 24))
