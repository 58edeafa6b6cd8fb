"""Session recovery in the client: the token, the reconnect steps, keyed calls sent again.

Against the scripted gateway of ``scripted_gateway.py`` (real WebSockets on
loopback), so each test decides what the gateway answers, holds or drops (the
session ticket's arithmetic alone is ``test_session_ticket.py``). Waits are on
what the gateway received or on the client's events, bounded by ``WAIT``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from rtctl import RpcError
from rtctl.client import (
    CallTimeout,
    Client,
    ClientState,
    ConnectionLost,
    ErrorKind,
    IllegalTransition,
    ProtocolError,
    Reconnection,
    Recovered,
    ServerError,
    TransportError,
    Verdict,
)
from rtctl.protocol.codes import CloseCode, ErrorCode
from tests.client.lab import WAIT, record_states
from tests.client.scripted_gateway import HOLD, TOKEN_LIFE, Conn, Scene
from tests.conftest import TIMING

S = ClientState


def recoveries(client: Client) -> tuple[list[Recovered], asyncio.Event]:
    seen: list[Recovered] = []
    event = asyncio.Event()

    @client.on_recovered
    def record(recovered: Recovered) -> None:
        seen.append(recovered)
        event.set()

    return seen, event


async def test_the_session_is_resumed_with_the_token_of_the_last_connection(
        scene: Scene) -> None:
    client = scene.client()
    seen, recovered = recoveries(client)
    await client.connect()
    first = await scene.gateway.conn(0)
    assert (first.recover, first.methods()) == (None, ["session.info"])
    assert (client.session, client.resumed) == ("s1", False)
    assert not seen  # the first connection recovers nothing
    await first.drop()
    await asyncio.wait_for(recovered.wait(), WAIT)
    second = await scene.gateway.conn(1)
    assert second.recover == "t1"
    assert (client.session, client.resumed, client.state) == ("s1", True, S.CONNECTED)
    (event,) = seen
    assert (event.session, event.resumed, event.resume_error, event.failed) == (
        "s1", True, None, 0)
    assert 0 < event.seconds < WAIT


async def test_a_refused_resume_says_why_and_the_new_session_counts(scene: Scene) -> None:
    async def refuse(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "session.info" and conn.recover is not None:
            return {**scene.gateway.session_info(conn), "connection_id": "s9",
                    "resumed": False, "resume_error": "expired"}
        return NotImplemented

    scene.gateway.answer = refuse
    client = scene.client()
    seen, recovered = recoveries(client)
    await client.connect()
    await (await scene.gateway.conn(0)).drop()
    await asyncio.wait_for(recovered.wait(), WAIT)
    assert (seen[0].session, seen[0].resumed, seen[0].resume_error) == ("s9", False, "expired")
    assert (client.session, client.resumed) == ("s9", False)


async def test_without_recover_no_session_info_and_no_token(scene: Scene) -> None:
    client = scene.client(recover=False)
    seen, recovered = recoveries(client)
    await client.connect()
    await client.call("game.x")
    await (await scene.gateway.conn(0)).drop()
    await asyncio.wait_for(recovered.wait(), WAIT)
    second = await scene.gateway.conn(1)
    assert (scene.gateway.conns[0].methods(), second.recover) == (["game.x"], None)
    assert (seen[0].session, client.session) == (None, None)


async def test_steps_run_on_the_new_link_before_the_queue_and_connected(scene: Scene) -> None:
    client = scene.client()
    order: list[tuple[str, Any]] = []

    @client.add_reconnect_step
    async def step(link: Reconnection) -> None:
        order.append(("step", client.state))
        order.append(("answer", await link.call("game.step", [len(order)])))

    async def echo(conn: Conn, request: dict[str, Any]) -> Any:
        return request.get("params", NotImplemented)

    scene.gateway.answer = echo
    client.on_state_change(lambda event: order.append(("state", event.new)))
    await client.connect()
    await (await scene.gateway.conn(0)).drop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    queued = asyncio.ensure_future(client.call("game.queued", ["q"]))
    await asyncio.sleep(0)  # one turn of the loop: the call is in the queue (asserted)
    assert client.queued == 1
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    assert await asyncio.wait_for(queued, WAIT) == ["q"]
    second = scene.gateway.conns[1]
    assert second.methods() == ["session.info", "game.step", "game.queued"]
    assert order == [("state", S.CONNECTING), ("step", S.CONNECTING), ("answer", [2]),
                     ("state", S.CONNECTED), ("state", S.RECONNECTING),
                     ("step", S.RECONNECTING), ("answer", [6]), ("state", S.CONNECTED)]


async def test_a_failing_step_is_reported_and_the_connection_proceeds(
        scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    async def refuse(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "game.step":
            raise RpcError(ErrorCode.FORBIDDEN, "no")
        return NotImplemented

    scene.gateway.answer = refuse
    client = scene.client()
    errors: list[Verdict] = []
    client.on_error(errors.append)
    ran: list[str] = []

    @client.add_reconnect_step
    async def refused(link: Reconnection) -> None:
        await link.call("game.step")

    @client.add_reconnect_step
    def broken(link: Reconnection) -> Any:
        ran.append("broken")
        raise RuntimeError("a bug in the game's step")

    @client.add_reconnect_step
    async def last(link: Reconnection) -> None:
        ran.append("last")

    seen, recovered = recoveries(client)
    with caplog.at_level(logging.ERROR, logger="rtctl.client"):
        await client.connect()
        await (await scene.gateway.conn(0)).drop()
        await asyncio.wait_for(recovered.wait(), WAIT)
    assert ran == ["broken", "last"] * 2
    refused_step = (ErrorKind.SERVER, False, ErrorCode.FORBIDDEN)
    assert [(v.kind, v.reconnect, getattr(v.error, "code", None)) for v in errors] == [
        refused_step, (ErrorKind.TRANSPORT, True, None), refused_step]  # the drop between
    assert seen[0].failed == 2
    assert client.state is S.CONNECTED
    bugs = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert len(bugs) == 2


async def test_a_malformed_session_info_is_reported_and_the_connection_proceeds(
        scene: Scene) -> None:
    async def malformed(conn: Conn, request: dict[str, Any]) -> Any:
        return {"user": "alice"} if request["method"] == "session.info" else NotImplemented

    scene.gateway.answer = malformed
    client = scene.client()
    errors: list[Verdict] = []
    client.on_error(errors.append)
    await client.connect()
    assert [(v.kind, type(v.error)) for v in errors] == [(ErrorKind.PROTOCOL, ProtocolError)]
    assert client.session is None


async def test_a_link_that_drops_during_the_steps_runs_them_again_on_the_next(
        scene: Scene) -> None:
    async def drop_first_step(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "game.step" and conn.index == 1:
            await conn.drop()
            return HOLD
        return NotImplemented

    scene.gateway.answer = drop_first_step
    client = scene.client()
    states = record_states(client)
    errors: list[Verdict] = []
    client.on_error(errors.append)
    client.add_reconnect_step(lambda link: link.call("game.step"))
    seen, recovered = recoveries(client)
    await client.connect()
    await (await scene.gateway.conn(0)).drop()
    await asyncio.wait_for(recovered.wait(), WAIT)
    assert [conn.methods() for conn in scene.gateway.conns] == [
        ["session.info", "game.step"]] * 3
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]
    assert [v.kind for v in errors] == [ErrorKind.TRANSPORT] * 2  # the drops, no step failed
    assert seen[0].failed == 0


async def test_close_during_the_steps_ends_them(scene: Scene) -> None:
    client = scene.client()
    started, ended = asyncio.Event(), asyncio.Event()

    @client.add_reconnect_step
    async def forever(link: Reconnection) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    connecting = asyncio.ensure_future(client.connect())
    await asyncio.wait_for(started.wait(), WAIT)
    await asyncio.wait_for(client.close(), WAIT)
    assert ended.is_set()
    assert client.state is S.CLOSED
    with pytest.raises(IllegalTransition):  # connect() returns once closed: not connected
        await asyncio.wait_for(connecting, WAIT)



async def test_a_link_a_step_finds_closed_is_never_reported_connected(scene: Scene) -> None:
    """A step's send may fail before the reader sees the link end (picows refuses a send
    once this side's Close frame is out, while the reader waits for the gateway's): the
    steps then end first, the loss taken in their stride, as Rooms takes it."""
    client = scene.client()
    states = record_states(client)
    links_at_recovery: list[int] = []
    client.on_recovered(lambda _: links_at_recovery.append(len(scene.gateway.conns)))
    started: list[asyncio.Future[Any]] = []

    @client.add_reconnect_step
    async def close_then_call(link: Reconnection) -> None:
        if len(scene.gateway.conns) == 2:  # on the first link that replaces a dropped one
            started.extend([asyncio.ensure_future(client.reconnect()),  # starts first
                            asyncio.ensure_future(link.call("game.step"))])
            await asyncio.wait(started[1:])  # not for the close: it goes on

    await client.connect()
    await (await scene.gateway.conn(0)).drop()
    await client.wait_for(S.RECONNECTING, timeout=WAIT)
    await client.wait_for(S.CONNECTED, timeout=WAIT)
    assert links_at_recovery == [3]
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]
    closed, called = await asyncio.gather(*started, return_exceptions=True)
    assert closed is None
    assert isinstance(called, ConnectionLost)


async def test_a_step_that_gives_the_link_up_is_run_again_on_the_next(scene: Scene) -> None:
    async def busy_once(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] == "game.step" and conn.index == 1:
            raise RpcError(ErrorCode.BACKEND_UNAVAILABLE, "try again")
        return NotImplemented

    scene.gateway.answer = busy_once
    client = scene.client()
    states = record_states(client)
    errors: list[Verdict] = []
    client.on_error(errors.append)
    seen, recovered = recoveries(client)
    later: list[str] = []

    @client.add_reconnect_step
    async def step(link: Reconnection) -> None:
        try:
            await link.call("game.step")
        except ServerError as exc:
            await link.reconnect(exc)
            await link.reconnect(exc)  # once is enough: nothing more is reported or closed

    @client.add_reconnect_step
    async def after(link: Reconnection) -> None:
        later.append("ran")

    await client.connect()
    await (await scene.gateway.conn(0)).drop()
    await asyncio.wait_for(recovered.wait(), WAIT)
    given_up = scene.gateway.conns[1]
    assert (given_up.ws.close_code, given_up.ws.close_reason) == (
        CloseCode.INTERNAL_ERROR, "a reconnect step could not finish")  # not 1000: held
    assert scene.gateway.conns[2].recover == "t2"  # the session goes on
    assert [(v.kind, v.reconnect, type(v.error)) for v in errors] == [
        (ErrorKind.TRANSPORT, True, TransportError),  # the drop
        (ErrorKind.SERVER, True, ServerError),  # the step's reason to give the link up
        (ErrorKind.TRANSPORT, True, TransportError)]  # the link it closed
    assert later == ["ran", "ran"]  # not on the link given up
    assert states == [S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED]
    assert (len(seen), seen[0].resumed, seen[0].failed) == (1, True, 0)

# -- keyed calls ----------------------------------------------------------------------


def hold_on(conn_index: int, method: str = "game.buy") -> Callable[..., Any]:
    """An answer that holds ``method`` on the connection ``conn_index`` and echoes after."""

    async def answer(conn: Conn, request: dict[str, Any]) -> Any:
        if request["method"] != method:
            return NotImplemented
        return HOLD if conn.index <= conn_index else {"bought": request["params"]}

    return answer


async def test_a_keyed_call_in_flight_is_sent_again_once_after_the_steps(scene: Scene) -> None:
    scene.gateway.answer = hold_on(0)
    client = scene.client()
    client.add_reconnect_step(lambda link: link.call("game.step"))
    await client.connect()
    first = await scene.gateway.conn(0)
    keyed = asyncio.ensure_future(client.call("game.buy", ["sword"], idempotency_key="buy-1"))
    plain = asyncio.ensure_future(client.call("game.buy", ["shield"]))
    await first.wait_for("game.buy", 2)
    await first.drop()
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(plain, WAIT)  # at most once: the caller decides
    queued = asyncio.ensure_future(client.call("game.later"))
    await asyncio.sleep(0)  # one turn of the loop: the call is in the queue (asserted)
    assert client.queued == 1
    assert await asyncio.wait_for(keyed, WAIT) == {"bought": ["sword"]}
    await asyncio.wait_for(queued, WAIT)
    second = scene.gateway.conns[1]
    assert second.methods() == ["session.info", "game.step", "game.buy", "game.later"]
    sent = [r for c in scene.gateway.conns for r in c.requests if r["method"] == "game.buy"]
    assert [(r["params"], r.get("idempotency_key")) for r in sent] == [
        (["sword"], "buy-1"), (["shield"], None), (["sword"], "buy-1")]


async def test_a_keyed_call_is_sent_again_after_each_drop_until_its_timeout(
        scene: Scene) -> None:
    scene.gateway.answer = hold_on(1)
    client = scene.client()
    await client.connect()
    keyed = asyncio.ensure_future(
        client.call("game.buy", ["sword"], idempotency_key="buy-2", timeout=WAIT))
    for index in (0, 1):
        conn = await scene.gateway.conn(index)
        await conn.wait_for("game.buy")
        await conn.drop()
    assert await asyncio.wait_for(keyed, WAIT) == {"bought": ["sword"]}
    assert [c.methods().count("game.buy") for c in scene.gateway.conns] == [1, 1, 1]


async def test_a_keyed_call_still_times_out_and_is_not_sent_again_after(scene: Scene) -> None:
    scene.gateway.answer = hold_on(9)
    client = scene.client()
    await client.connect()
    with pytest.raises(CallTimeout) as info:
        await client.call("game.buy", ["sword"], idempotency_key="buy-3", timeout=0.1 * TIMING)
    assert info.value.sent
    recovered = recoveries(client)[1]
    await (await scene.gateway.conn(0)).drop()
    await asyncio.wait_for(recovered.wait(), WAIT)
    assert "game.buy" not in scene.gateway.conns[1].methods()


@pytest.mark.parametrize("key", ["", "x" * 65, "a b", "é"])
async def test_a_bad_idempotency_key_is_refused_before_anything_is_sent(
        scene: Scene, key: str) -> None:
    client = scene.client()
    await client.connect()
    with pytest.raises(ValueError, match="idempotency_key"):
        await client.call("game.buy", idempotency_key=key)
    assert scene.gateway.conns[0].methods() == ["session.info"]


# -- the token, fetched again -----------------------------------------------------------


async def test_the_token_is_fetched_again_past_half_its_life(scene: Scene) -> None:
    now = [1_000_000.0]
    scene.gateway.clock = lambda: now[0]
    client = scene.client(clock=lambda: now[0], ping_interval=0.01 * TIMING)
    await client.connect()
    first = await scene.gateway.conn(0)
    await first.wait_for("sys.ping", 2)  # the ticket is not due: no session.info
    assert first.methods().count("session.info") == 1
    now[0] += TOKEN_LIFE / 2
    await first.wait_for("session.info", 2)
    pings = first.methods().count("sys.ping")
    await first.wait_for("sys.ping", pings + 1)  # the loop pings again once it has the answer
    await first.drop()
    assert (await scene.gateway.conn(1)).recover == "t2"
