"""The backends' log lines say what happened: a first connect is not a recovery, and a
clean shutdown is not a lost connection (issue 17 §4); no line carries a backend's password."""

from __future__ import annotations

import logging

import pytest

from rtctl.backends import connect_backends
from rtctl.backends.base import BackendUnavailable
from rtctl.backends.nats import NatsBus
from rtctl.backends.redis import RedisConnection
from rtctl.cli.serve import _cluster_line
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


async def test_redis_connect_log_hides_the_password(
    redis_server: ServerProcess, caplog: pytest.LogCaptureFixture,
) -> None:
    # The test's redis-server has no password; redis-py carries on when the server says
    # AUTH was not needed, so the connect succeeds and is logged.
    caplog.set_level(logging.INFO, "rtctl.backends.redis")
    url = redis_server.url.replace("redis://", "redis://:s3cret@")
    redis = RedisConnection(url)
    try:
        await redis.start()
    finally:
        await redis.close()
    shown = redis_server.url.replace("redis://", "redis://:<redacted>@")
    assert lines(caplog, "rtctl.backends.redis") == [("INFO", f"redis connected at {shown}")]


async def test_nats_start_error_hides_the_password() -> None:
    bus = NatsBus("nats://game:s3cret@127.0.0.1:1", timeout=0.5)
    with pytest.raises(BackendUnavailable) as failed:
        await bus.start()
    assert "s3cret" not in str(failed.value)
    assert "nats://game:<redacted>@127.0.0.1:1" in str(failed.value)


def test_the_serve_banner_names_backends_without_their_passwords() -> None:
    backends = connect_backends(redis_url="redis://:s3cret@10.0.0.5:6379/0",
                                nats_url="nats://game:s3cret@10.0.0.6:4222", node_id="gw-a")
    line = _cluster_line(backends)
    assert "s3cret" not in line
    assert "redis redis://:<redacted>@10.0.0.5:6379/0" in line
    assert "nats nats://game:<redacted>@10.0.0.6:4222" in line
