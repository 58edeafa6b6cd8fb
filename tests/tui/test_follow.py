"""The screens repaint when their data changes, not when a timer fires.

The app here samples once an hour, so its sampling timer never fires during
a test, and the stack is offline: a tap the test publishes into, and an
observer that never connects. Each test waits (bounded) for the app's
reactive to move with the data, then lets the app process its messages with
``pilot.pause()``: whatever a screen shows then was drawn because the
reactive it follows moved.
"""

from __future__ import annotations

from textual.widgets import Static

from rtctl.client import Client
from rtctl.protocol.tap import AuthRefused, Connected
from rtctl.tap import Tap
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.screens import ConnectionScreen, DashboardScreen, InspectorScreen
from rtctl.tui.stack import Stack
from rtctl.tui.widgets import FrameTable
from tests.tui.conftest import wait_until

HOUR = 3600.0  # the sampling period: never within a test
URL = "ws://127.0.0.1:1"  # nothing listens there, and nothing connects to it


def offline_app(tap: Tap) -> DevtoolsApp:
    async def start() -> Stack:
        return Stack(observer=Client(URL), url=URL, tap=tap.subscribe())

    return DevtoolsApp(start, refresh=HOUR)


def text(screen: object, selector: str) -> str:
    assert isinstance(screen, DashboardScreen | ConnectionScreen | InspectorScreen)
    return str(screen.query_one(selector, Static).render())


async def test_inspector_and_dashboard_follow_the_tap() -> None:
    tap = Tap()
    app = offline_app(tap)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        inspector = app.screen
        assert isinstance(inspector, InspectorScreen)
        table = inspector.query_one(FrameTable)
        await wait_until(lambda: app.tapped == 1, "the tap's first event")
        await pilot.pause()
        assert table.row_count == 1  # "subscribed"

        tap.publish(Connected(t_us=1, conn="c1", user="zoe", remote=None, local=None,
                              path="/ws", subprotocol=None))
        await wait_until(lambda: app.tapped == 2, "zoe's connection on the feed")
        await pilot.pause()
        assert table.row_count == 2
        assert table.get_row_at(1)[2:4] == ["zoe", "connected"]
        assert "2 kept, 0 errors" in text(inspector, "#inspector-note")

        await pilot.press("1")
        dashboard = app.screen
        assert "0 on the tap" in text(dashboard, "#summary")
        tap.publish(AuthRefused(t_us=2, remote=None, path="/ws", status=401,
                                reason="expired", user="zoe"))
        await wait_until(lambda: app.tapped == 3, "the refusal on the feed")
        await pilot.pause()
        assert "1 on the tap" in text(dashboard, "#summary")
        await pilot.press("q")


async def test_dashboard_and_connection_follow_the_observer() -> None:
    app = offline_app(Tap())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: app.session.stack is not None, "the stack")
        stack = app.session.stack
        assert stack is not None
        await pilot.press("2", "1")  # the connection screen listens from now on, hidden
        await pilot.pause()
        dashboard = app.screen
        assert f"disconnected to {URL}" in text(dashboard, "#summary")

        await stack.observer.close()  # a state change, and no network involved
        await pilot.pause()
        assert f"closed to {URL}" in text(dashboard, "#summary")

        await pilot.press("2")
        connection = app.screen
        assert isinstance(connection, ConnectionScreen)
        assert connection.history == ["disconnected → closed"]
        assert text(connection, "#history") == "recent changes:\ndisconnected → closed"
        assert "state       closed" in text(connection, "#client")
        await pilot.press("q")
