"""Helpers of the TUI tests: a small, fast demo and a bounded wait on a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rtctl.tui.bots import BotConfig
from rtctl.tui.demo import DemoConfig
from tests.conftest import TIMING

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
