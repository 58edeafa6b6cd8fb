"""Rooms against a gateway with an inbound call rate: a crowd of joins again after a
reconnect is spread over the rate on the same link, not turned into reconnects."""

from __future__ import annotations

import asyncio

from rtctl import CallContext
from rtctl.client import ClientState, ConnectionLost, RoomRecovery, Rooms, ServerError
from rtctl.config import Routing
from rtctl.protocol.codes import CloseCode, ErrorCode
from tests.client.lab import WAIT, Lab, record_states

ROOMS = [f"r{i}" for i in range(12)]  # four times the burst


async def join_within_the_rate(rooms: Rooms, room: str) -> None:
    """What a game does with -32029: wait what the gateway names, ask again."""
    while True:
        try:
            await rooms.join(room)
            return
        except ServerError as exc:
            if exc.code != ErrorCode.RATE_LIMITED:
                raise
            await asyncio.sleep(exc.retry_after)


async def test_a_client_in_more_rooms_than_the_burst_gets_them_all_back_on_one_link(
        lab: Lab) -> None:
    await lab.stop()

    @lab.router.method("game.drop")
    def drop(ctx: CallContext) -> None:
        assert ctx.peer is not None
        ctx.peer.close(CloseCode.INTERNAL_ERROR, "dropped by test")

    await lab.start(routing=Routing(inbound_rate=10.0, inbound_burst=3))
    client = lab.client()
    rooms = Rooms(client)
    back: list[RoomRecovery] = []
    all_back = asyncio.Event()

    def recovered(event: RoomRecovery) -> None:
        back.append(event)
        if len(back) == len(ROOMS):
            all_back.set()

    rooms.on_recovery(recovered)
    await client.connect()
    for room in ROOMS:
        await join_within_the_rate(rooms, room)
    states = record_states(client)
    while True:  # the drop itself may be refused by the rate
        try:
            await client.call("game.drop")  # answered, or lost with the link
        except ServerError as exc:
            await asyncio.sleep(exc.retry_after)
            continue
        except ConnectionLost:
            pass
        break
    await asyncio.wait_for(all_back.wait(), 4 * WAIT)
    assert sorted(event.room for event in back) == sorted(ROOMS)
    assert all(event.recovered for event in back), back
    await client.wait_for(ClientState.CONNECTED, timeout=WAIT)
    assert states.count(ClientState.RECONNECTING) == 1  # no link given up for the rate
