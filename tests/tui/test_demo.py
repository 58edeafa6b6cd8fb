"""The demo stack without the UI: everything through the simulator, and a clean close."""

from __future__ import annotations

import asyncio

from rtctl.client import ClientState
from rtctl.tui.demo import start_demo
from rtctl.tui.stack import OBSERVER
from simulator.scenario import Outage
from tests.conftest import TIMING
from tests.tui.conftest import FAST_DEMO, wait_until


async def test_demo_observer_feels_the_simulator() -> None:
    stack = await start_demo(FAST_DEMO)
    try:
        assert stack.gateway is not None
        assert stack.proxy is not None
        assert stack.known_users == [OBSERVER, "alice", "bob"]
        assert stack.observer.url.startswith(stack.proxy.url)
        await wait_until(lambda: stack.observer.netstats().pings >= 2, "the first pings")
        stack.proxy.conditions.update({"latency": "100ms"})  # one way: +200 ms round trip
        await wait_until(lambda: (stack.observer.netstats().rtt or 0) >= 0.2,
                         "the RTT to include the simulated latency")
        await wait_until(lambda: len(stack.proxy.pairs) == 3, "observer and bots through it")
    finally:
        await stack.close()
    assert not stack.gateway.ready
    assert stack.observer.state is ClientState.CLOSED
    assert not stack.proxy.pairs
    assert not stack.gateway.tap.active


async def test_lag_switch_holds_and_lets_go() -> None:
    stack = await start_demo(FAST_DEMO)
    try:
        assert stack.proxy is not None
        await wait_until(lambda: stack.observer.netstats().pings >= 1, "a ping")
        proxy = stack.proxy
        proxy.add_outage(Outage(proxy.elapsed(), 3600.0))
        pings = stack.observer.netstats().pings
        await asyncio.sleep(0.5 * TIMING)  # a window of time in which nothing may arrive
        assert stack.observer.netstats().pings <= pings + 1  # one may have been in flight
        proxy.conditions.end_outages(proxy.elapsed())
        assert proxy.conditions.as_json(proxy.elapsed())["outages"] == []
        await wait_until(lambda: stack.observer.netstats().pings > pings + 1,
                         "pings to come back after the outage")
    finally:
        await stack.close()


async def test_demo_close_leaves_no_task() -> None:
    stack = await start_demo(FAST_DEMO)
    await wait_until(lambda: stack.gateway is not None and len(stack.gateway.registry) >= 2,
                     "bots to connect")
    await stack.close()
    await asyncio.sleep(0)  # let cancelled tasks finish their last step
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == []
