"""The bot players, against a real gateway on port 0, without any UI."""

from __future__ import annotations

import pytest

from rtctl.client import ClientState
from rtctl.gateway.server import Gateway
from rtctl.tui.bots import BOT_NAMES, BotConfig, BotCrowd
from tests.conftest import GatewayFactory, make_token
from tests.tui.conftest import wait_until


async def test_bots_join_play_and_stop(start_gateway: GatewayFactory) -> None:
    gateway: Gateway = await start_gateway()
    crowd = BotCrowd(gateway.url, make_token, BotConfig(count=3, interval=0.02, away=0.05,
                                                        seed=1))
    assert crowd.names == list(BOT_NAMES[:3])
    crowd.start()
    try:
        await wait_until(lambda: all(b.actions >= 3 for b in crowd.bots), "each bot to act")
        calls = gateway.metrics.calls
        assert {"room.join", "presence.set", "room.publish"} <= set(calls)
        await wait_until(lambda: gateway.metrics.connections_opened > 3,
                         "a bot to leave and come back")
        assert crowd.errors == 0
    finally:
        await crowd.stop()
    assert all(bot.state is ClientState.CLOSED for bot in crowd.bots)
    await wait_until(lambda: len(gateway.registry) == 0, "every bot connection to close")


async def test_bots_count_failed_calls(start_gateway: GatewayFactory) -> None:
    gateway: Gateway = await start_gateway()
    crowd = BotCrowd(gateway.url, lambda user: "not-a-token", BotConfig(count=1, away=0.01))
    crowd.start()
    try:
        await wait_until(lambda: crowd.errors >= 2, "refused connections to be counted")
    finally:
        await crowd.stop()
    assert "401" in str(crowd.bots[0].last_error) or "token" in str(crowd.bots[0].last_error)


def test_bot_count_is_bounded() -> None:
    with pytest.raises(ValueError, match="between 0 and"):
        BotCrowd("ws://127.0.0.1:1", make_token, BotConfig(count=len(BOT_NAMES) + 1))
