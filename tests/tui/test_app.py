"""The app driven with Pilot at 80×24 over a small, fast demo stack.

Every wait is on the app's own state (the session, the observer's netstats),
bounded by ``TIMING``; the app samples the rate and the RTT every 200 ms here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from rtctl.gateway.server import Gateway
from rtctl.protocol.lanes import Lane
from rtctl.protocol.tap import FrameSeen, Subscribed
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.demo import start_demo
from rtctl.tui.screens import (
    ConnectionScreen,
    DashboardScreen,
    InspectorScreen,
    PresenceScreen,
    ProfilerScreen,
    SimulatorScreen,
)
from rtctl.tui.stack import Stack, attach
from rtctl.tui.widgets import FrameTable
from tests.conftest import TIMING
from tests.tui.conftest import FAST_DEMO, attached_app, open_screen, wait_until


def demo_app(tmp_path: Path) -> DevtoolsApp:
    return DevtoolsApp(lambda: start_demo(FAST_DEMO), refresh=0.2, export_dir=tmp_path)


async def test_starts_fast_switches_screens_and_quits_clean(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    started = time.perf_counter()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.stack is not None, "the stack to start")
        assert time.perf_counter() - started < 2 * TIMING  # usable within 2 s
        stack: Stack = app.session.stack
        assert isinstance(app.screen, DashboardScreen)
        for key, screen in (("2", ConnectionScreen), ("3", PresenceScreen),
                            ("4", InspectorScreen), ("5", SimulatorScreen),
                            ("6", ProfilerScreen)):
            await pilot.press(key)
            assert isinstance(app.screen, screen)
        profiler = app.screen
        assert isinstance(profiler, ProfilerScreen)
        await wait_until(lambda: profiler.document is not None, "the gateway's /profile")
        assert profiler.document is not None
        assert "methods" in profiler.document
        await pilot.press("1")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.click(".nav-bar", offset=(20, 0))  # " 2 Connection "
        assert isinstance(app.screen, ConnectionScreen)
        await pilot.press("q")
    assert stack.gateway is not None
    assert not stack.gateway.ready
    assert stack.proxy is not None
    assert not stack.proxy.pairs
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_inspector_filters_and_exports(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        await wait_until(lambda: any(isinstance(r.event, FrameSeen) and r.method == "sys.ping"
                                     for r in screen.shown_rows()), "a ping on the tap")
        await pilot.press("slash", *"method=room.*")
        assert screen.query_one("#filter", Input).value == "method=room.*"
        await wait_until(lambda: len(screen.shown_rows()) > 1, "room traffic")
        shown = [r for r in screen.shown_rows() if not isinstance(r.event, Subscribed)]
        assert shown
        assert all((r.method or "").startswith("room.") for r in shown)
        await pilot.press("enter", "space")  # back to the table, and pause
        assert screen.paused
        table = screen.query_one(FrameTable)
        frozen, added = table.row_count, app.session.feed.added
        await wait_until(lambda: app.session.feed.added > added + 10, "more traffic")
        await pilot.pause()
        assert table.row_count == frozen
        await pilot.press("j", "x")
        await wait_until(lambda: screen.exported == 2, "both exports to be written")
        exported = sorted(p.suffix for p in tmp_path.iterdir())  # noqa: ASYNC240 -- a listing
        assert exported == [".jsonl", ".pcap"]
        await pilot.press("q")


async def test_simulated_latency_shows_in_the_rtt(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.rtt_ms.last is not None, "a first RTT")
        assert (app.session.rtt_ms.last or 0) < 200
        await pilot.press("5")
        latency = app.screen.query_one("#all Input.latency", Input)
        latency.focus()
        await pilot.press(*"200ms", "enter", "1")  # applied: "1" is a command again
        assert latency.value == "200ms"
        assert isinstance(app.screen, DashboardScreen)
        await wait_until(lambda: (app.session.rtt_ms.last or 0) >= 400,
                         "the RTT sparkline to show 2 × 200 ms")
        await pilot.pause()
        rtt_label = app.screen.query_one("#rtt-label", Static)
        label = str(rtt_label.render())
        assert label.startswith("RTT (ms), observer through the simulator: ")
        assert float(label.rpartition(": ")[2]) >= 400  # drawn from the sample
        summary = app.screen.query_one("#summary", Static)
        await pilot.press("l")
        assert app.session.lag_switch
        assert "OUTAGE (lag switch)" in str(summary.render())
        # The socket stays open through the outage: the status must not say "connected"
        # over an RTT that stopped moving.
        await wait_until(lambda: "no answer from" in str(summary.render()), "the silence")
        assert "connected to" not in str(summary.render())
        assert "(stale: no answer for" in str(rtt_label.render())
        frozen = len(app.session.rtt_ms.values)
        sampled = app.sampled
        await wait_until(lambda: app.sampled > sampled + 1, "two more samples")
        assert len(app.session.rtt_ms.values) == frozen  # no stale RTT drawn as measured
        await pilot.press("l")
        assert not app.session.lag_switch
        assert "OUTAGE" not in str(summary.render())
        await wait_until(lambda: "connected to" in str(summary.render()), "answers again")
        assert "stale" not in str(rtt_label.render())
        await pilot.press("q")


async def test_a_failed_start_says_why(tmp_path: Path) -> None:
    app = DevtoolsApp(lambda: attach("ws://127.0.0.1:1", None, timeout=0.2), refresh=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.problem is not None, "the start to fail")
        assert "127.0.0.1:1" in app.session.status
        await pilot.press("q")


async def test_connection_presence_and_loss(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.stack is not None, "the stack to start")
        stack: Stack = app.session.stack
        await pilot.press("3")
        table = app.screen.query_one("#presence", DataTable)
        await wait_until(lambda: table.row_count == len(stack.known_users), "the presence table")
        await pilot.press("2", "r")  # drop the observer's connection: it comes back by itself
        connection = app.screen
        assert isinstance(connection, ConnectionScreen)
        await wait_until(lambda: any("reconnecting → connected" in line
                                     for line in connection.history), "a reconnect")
        await pilot.press("5")
        app.screen.query_one("#all Input.loss", Input).focus()
        await pilot.press(*"100%", "enter", "escape")
        assert stack.proxy is not None
        await wait_until(lambda: sum(stack.proxy.metrics.dropped.values()) > 0,
                         "the simulator to drop messages")
        await pilot.press("1")
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "loss 100%" in summary
        await pilot.press("q")


async def test_attached_to_a_running_gateway(tmp_path: Path, gateway: Gateway) -> None:
    app = attached_app(gateway)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.stack is not None, "the observer to connect")
        assert not app.session.stack.embedded
        await wait_until(lambda: "admin" in app.session.feed.users, "the remote tap")
        await wait_until(lambda: app.session.rtt_ms.last is not None, "a first RTT")
        await pilot.pause()
        label = str(app.screen.query_one("#rtt-label", Static).render())
        assert label.startswith("RTT (ms), observer to the gateway: ")  # no simulator here
        await pilot.press("6")
        profiler = app.screen
        assert isinstance(profiler, ProfilerScreen)
        await wait_until(lambda: profiler.document is not None, "the remote /profile")
        await pilot.press("l")  # no simulator here: a warning, nothing else
        assert not app.session.lag_switch
        await pilot.press("q")
    await wait_until(lambda: len(gateway.registry) == 0, "the observer to have left")


async def test_the_profiler_shows_each_lane_over_the_last_window(gateway: Gateway) -> None:
    app = attached_app(gateway, admin=False)  # /profile refused: the lanes need no token
    async with app.run_test(size=(80, 24)) as pilot:
        profiler = await open_screen(app, pilot, "6")
        assert isinstance(profiler, ProfilerScreen)
        await wait_until(lambda: profiler.lanes is not None, "a first read of /metrics")
        assert profiler.document is None
        telemetry = gateway.metrics.lanes[Lane.TELEMETRY]
        telemetry.dropped += 7  # in the window from here to the next read
        telemetry.depth, telemetry.depth_bytes = 3, 90
        await pilot.press("r")
        table = profiler.query_one("#lanes", DataTable)

        def telemetry_row() -> list[str]:
            return ([str(cell) for cell in table.get_row_at(len(Lane) - 1)]
                    if table.row_count == len(Lane) else [])

        await wait_until(lambda: telemetry_row()[-1:] == ["7"], "the drops in the lane table")
        assert telemetry_row() == ["telemetry", "3", "90", "–", "–", "0", "0", "7"]
        await pilot.press("q")
