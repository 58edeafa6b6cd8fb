"""The backends' log lines say what happened: a first connect is not a recovery, and a
clean shutdown is not a lost connection (issue 17 §4)."""

from __future__ import annotations

import logging

import pytest

from rtctl.backends.nats import NatsBus
from rtctl.backends.redis import RedisConnection
from tests.servers import ServerProcess


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger]


async def test_redis_first_connect_is_logged_as_a_connect_not_a_recovery(
    redis_server: ServerProcess, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "rtctl.backends.redis")
    redis = RedisConnection(redis_server.url)
    recovered: list[None] = []
    redis.on_recovered(lambda: recovered.append(None))
    await redis.start()
    await redis.close()
    assert lines(caplog, "rtctl.backends.redis") == [
        ("INFO", f"redis connected at {redis_server.url}")]
    assert recovered == []  # nothing was missed, so nothing to resynchronise


async def test_nats_clean_shutdown_is_not_logged_as_a_disconnect(
    nats_server: ServerProcess, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "rtctl.backends.nats")
    bus = NatsBus(nats_server.url)
    await bus.start()
    await bus.close()
    assert lines(caplog, "rtctl.backends.nats") == [("INFO", "nats connection closed")]
    assert bus.failure() == "closed"
