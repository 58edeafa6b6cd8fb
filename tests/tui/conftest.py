"""Helpers of the TUI tests: a small, fast demo, an app attached to a running gateway,
and a bounded wait on a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot
from textual.screen import Screen

from rtctl.gateway.server import Gateway
from rtctl.tui.app import DevtoolsApp
from rtctl.tui.bots import BotConfig
from rtctl.tui.demo import DemoConfig
from rtctl.tui.stack import attach
from tests.conftest import TIMING, make_token

# Two bots acting every 100 ms, an observer pinging every 100 ms: traffic within moments.
# No arena here: its players are tested with the arena screen (test_arena_screen.py).
FAST_DEMO = DemoConfig(bots=BotConfig(count=2, interval=0.1, away=0.2, seed=7),
                       observer_ping=0.1, call_timeout=1.0, seed=7, arena=None)


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``condition`` on the event loop until it holds; fail after ``timeout`` × TIMING."""
    try:
        async with asyncio.timeout(timeout * TIMING):
            # The app's state has no event a test can wait on: poll it, bounded.
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def attached_app(gateway: Gateway, *, admin: bool = True, refresh: float = 0.2) -> DevtoolsApp:
    """The app attached to a running gateway, by default as an admin (the tap and /profile
    need the role)."""
    token = make_token("admin", role="admin") if admin else make_token("bob")
    return DevtoolsApp(lambda: attach(gateway.url, token), refresh=refresh)


async def open_screen(app: DevtoolsApp, pilot: Pilot[None], key: str) -> Screen[object]:
    """Once the stack is up, the screen ``key`` opens."""
    await wait_until(lambda: app.session.stack is not None, "the observer to connect")
    await pilot.press(key)
    return app.screen
