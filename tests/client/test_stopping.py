"""Why the client stops or keeps trying, against a real gateway on loopback.

Refusals at the upgrade (RFC 6455 §4.1: 401, 404, 429, 503) and closes the
gateway chooses (4001, 4003) end the same way over either client transport;
see the table in :mod:`rtctl.client.errors`.
"""

from __future__ import annotations

import asyncio

import pytest

from rtctl.client import (
    AuthRefused,
    Backoff,
    ClientError,
    ClientState,
    ErrorKind,
    GaveUp,
    Kicked,
    ProtocolError,
    StateChanged,
    TransportError,
    Verdict,
)
from rtctl.config import Limits
from rtctl.exceptions import AuthError
from tests.client.lab import WAIT, Lab, record_states
from tests.conftest import make_token

S = ClientState


# -- auth and other reasons to stop ------------------------------------------------------


async def test_a_refused_token_stops_the_client(lab: Lab) -> None:
    client = lab.client(token="not-a-jwt")
    with pytest.raises(ClientError) as info:  # one root catches it...
        await client.connect()
    assert isinstance(info.value, AuthRefused)
    assert isinstance(info.value, AuthError)  # ...and so does the older name
    assert info.value.reason == "malformed"
    assert client.state is S.DISCONNECTED
    client.token = make_token()  # a client that stopped may start again
    await client.connect()
    assert client.state is S.CONNECTED


async def test_the_refresh_callback_supplies_a_new_token(lab: Lab) -> None:
    asked: list[str] = []

    async def refresh(error: AuthRefused) -> str:
        asked.append(error.reason)
        return make_token("alice")

    client = lab.client(token="not-a-jwt", token_refresh=refresh)
    await client.connect()
    assert asked == ["malformed"]
    assert (await client.call("session.info"))["user"] == "alice"


async def test_token_expiry_4001_asks_for_a_new_token(lab: Lab) -> None:
    refreshed = asyncio.Event()

    def refresh(error: AuthRefused) -> str:
        assert error.reason == "expired"
        refreshed.set()
        return make_token()

    client = lab.client(token_refresh=refresh)
    states = record_states(client)
    await client.connect()
    await client.notify("game.expire")
    await asyncio.wait_for(refreshed.wait(), WAIT)
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]


async def test_token_expiry_without_refresh_stops(lab: Lab) -> None:
    client = lab.client()
    events: list[StateChanged] = []
    client.on_state_change(events.append)
    await client.connect()
    await client.notify("game.expire")
    await client.wait_for(S.DISCONNECTED, timeout=WAIT)
    assert isinstance(events[-1].error, AuthRefused)
    assert events[-1].error.reason == "expired"


async def test_kicked_is_not_retried(lab: Lab) -> None:
    client = lab.client()
    await client.connect()
    await client.notify("game.kick")
    await client.wait_for(S.DISCONNECTED, timeout=WAIT)
    assert isinstance(client.last_error, Kicked)




async def test_a_failing_refresh_callback_stops_on_the_refusal(lab: Lab) -> None:
    def refresh(error: AuthRefused) -> str:
        raise RuntimeError("the auth service is down")

    client = lab.client(token="not-a-jwt", token_refresh=refresh)
    with pytest.raises(AuthRefused) as info:
        await client.connect()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert client.state is S.DISCONNECTED


async def test_a_wrong_path_stops_the_client(lab: Lab) -> None:
    client = lab.client()
    client.url = f"{lab.url}/nope"  # a 404 (docs/api.md), answered before the token is read
    errors: list[Verdict] = []
    client.on_error(errors.append)
    with pytest.raises(ProtocolError, match="HTTP 404"):
        await client.connect()
    assert [(v.kind, v.reconnect) for v in errors] == [(ErrorKind.PROTOCOL, False)]
    assert client.state is S.DISCONNECTED


@pytest.mark.parametrize(("limits", "status"), [
    (Limits(max_connections=1), 503),
    (Limits(max_connections_per_user=1), 429),
])
async def test_limit_refusals_are_retried(lab: Lab, limits: Limits, status: int) -> None:
    await lab.stop()
    await lab.start(limits=limits)
    await lab.client().connect()
    second = lab.client(backoff=Backoff(base=0.01, cap=0.01, max_attempts=1))
    errors: list[Verdict] = []
    second.on_error(errors.append)
    with pytest.raises(GaveUp) as info:
        await second.connect()
    assert [(v.kind, v.reconnect) for v in errors] == [(ErrorKind.TRANSPORT, True)] * 2
    assert isinstance(info.value.__cause__, TransportError)
    assert f"HTTP {status}" in str(info.value.__cause__)
