"""Room schemas fetched from the gateway (:mod:`rtctl.inspect.schemas`): many rooms at once
through one connection, a refused fetch asked again, rooms of one type sharing one schema."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rtctl.client import Backoff, Client
from rtctl.gateway.server import Gateway
from rtctl.inspect import schemas as schemas_module
from rtctl.inspect.pairing import Pairing, Row
from rtctl.inspect.schemas import FETCH_ATTEMPTS, SchemaFetcher, schema_endpoint
from rtctl.inspect.states import StateFrames
from rtctl.protocol.tap import TapEvent
from rtctl.services import builtin_services
from rtctl.services.drift import DriftRoom
from rtctl.state import Schema
from tests.conftest import TIMING, GatewayFactory, make_token
from tests.inspect.test_state_frames import ROOM, binary, hp_stream, phrases

OPS = "ops"  # the inspector's user: the tap, the fetcher and the connections a test holds


def test_the_gateway_endpoint_beside_a_tap() -> None:
    assert schema_endpoint("ws://127.0.0.1:8765") == "ws://127.0.0.1:8765/ws"
    assert schema_endpoint("ws://127.0.0.1:8765/tap") == "ws://127.0.0.1:8765/ws"
    assert schema_endpoint("127.0.0.1:8765") == "ws://127.0.0.1:8765/ws"
    assert schema_endpoint("ws://127.0.0.1:8765/custom/tap") is None
    assert schema_endpoint("http://127.0.0.1:8767") is None  # a simulator: nothing to ask


class Learning(StateFrames):
    """Fetching StateFrames that records what it learns, and says when it knows ``rooms``."""

    def __init__(self, rooms: int) -> None:
        super().__init__(fetching=True)
        self.schemas: dict[str, type[Schema] | None] = {}
        self.rooms = rooms
        self.done = asyncio.Event()

    def learn(self, room: str, schema: type[Schema] | None) -> None:
        super().learn(room, schema)
        self.schemas[room] = schema
        if len(self.schemas) == self.rooms:
            self.done.set()


class Logged(logging.Handler):
    """Sets ``seen`` once a record is logged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.seen.set()


class Fed(Pairing):
    """A pairing that hands each event on to the fetcher after it, as a sink after the viewer."""

    def __init__(self, states: StateFrames, fetcher: SchemaFetcher) -> None:
        super().__init__(states)
        self.fetcher = fetcher

    def see(self, event: TapEvent) -> Row:
        row = super().see(event)
        self.fetcher.write(event)
        return row


Fetching = Callable[..., tuple[Learning, Pairing]]  # the fetching fixture


@pytest.fixture
def fetch_log(caplog: pytest.LogCaptureFixture) -> Iterator[Logged]:
    """What the schema fetcher logs, from INFO up (a retry is INFO, giving up a warning)."""
    caplog.set_level(logging.INFO, logger=schemas_module.__name__)
    handler = Logged()
    logging.getLogger(schemas_module.__name__).addHandler(handler)
    yield handler
    logging.getLogger(schemas_module.__name__).removeHandler(handler)


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    gw: Gateway = await start_gateway(services=builtin_services(room_types={"drift": DriftRoom}))
    return gw


@pytest.fixture
async def occupied(gateway: Gateway) -> AsyncIterator[list[Client]]:
    """Connections of the inspector's user the test holds (a gateway takes 8 per user)."""
    clients: list[Client] = []
    yield clients
    for client in clients:
        await client.close()


async def occupy(gateway: Gateway, clients: list[Client], count: int) -> None:
    for _ in range(count):
        client = Client(gateway.url, token=make_token(OPS, role="admin"), binary=False,
                        ping_interval=None)
        await client.connect()
        clients.append(client)


@pytest.fixture
def fetching(gateway: Gateway) -> Iterator[Fetching]:
    """``fetching(rooms, retry=…)``: StateFrames learning ``rooms`` rooms, and a pairing
    whose events go on to a schema fetcher, as ``rtctl inspect`` runs them."""
    fetchers: list[SchemaFetcher] = []

    def start(rooms: int, **options: Any) -> tuple[Learning, Pairing]:
        states = Learning(rooms)
        fetcher = SchemaFetcher(gateway.url, token=make_token(OPS, role="admin"),
                                states=states, timeout=5 * TIMING, **options)
        fetchers.append(fetcher)
        return states, Fed(states, fetcher)

    yield start
    for fetcher in fetchers:
        fetcher.close()


async def test_a_dozen_rooms_met_at_once_are_all_decoded_and_share_one_schema(
    gateway: Gateway, occupied: list[Client], fetching: Fetching, fetch_log: Logged,
) -> None:
    await occupy(gateway, occupied, 1)  # the inspector's tap
    _, (full, delta) = hp_stream(7)
    rooms = [f"drift:{n}" for n in range(12)]
    states, pairing = fetching(len(rooms))
    for room in rooms:
        pairing.see(binary(full, room=room))
    await asyncio.wait_for(states.done.wait(), 20 * TIMING)
    assert fetch_log.messages == []  # nothing refused, nothing asked twice
    assert len(set(states.schemas.values())) == 1  # one type: one set of classes
    shown = [pairing.see(binary(delta, room=room)) for room in rooms]
    assert [phrases(row) for row in shown] == [["entities.e0.hp 100 → 7"]] * len(rooms)


async def test_a_fetch_refused_by_a_busy_gateway_is_asked_again(
    gateway: Gateway, occupied: list[Client], fetching: Fetching, fetch_log: Logged,
) -> None:
    await occupy(gateway, occupied, 8)  # the user's limit: the next connection gets 429
    _, (full, delta) = hp_stream(7)
    states, pairing = fetching(1, retry=Backoff(base=0.1 * TIMING, jitter=0))
    pairing.see(binary(full))
    await asyncio.wait_for(fetch_log.seen.wait(), 20 * TIMING)
    assert "HTTP 429" in fetch_log.messages[0]
    assert "asking again" in fetch_log.messages[0]
    assert states.schemas == {}  # not given up: still waiting, its frames held
    await occupied.pop().close()  # a connection free: the next round gets in
    await asyncio.wait_for(states.done.wait(), 20 * TIMING)
    assert states.schemas[ROOM] is not None
    assert phrases(pairing.see(binary(delta))) == ["entities.e0.hp 100 → 7"]


async def test_a_fetch_refused_every_time_gives_up_after_its_attempts(
    gateway: Gateway, occupied: list[Client], fetching: Fetching, fetch_log: Logged,
) -> None:
    await occupy(gateway, occupied, 8)
    _, (full, delta) = hp_stream(7)
    states, pairing = fetching(1, retry=Backoff(base=0.01, cap=0.01, jitter=0))
    pairing.see(binary(full))
    await asyncio.wait_for(states.done.wait(), 20 * TIMING)
    assert states.schemas == {ROOM: None}
    assert len(fetch_log.messages) == FETCH_ATTEMPTS  # each retry, then giving up once
    assert fetch_log.messages[-1].startswith(f"rtctl inspect: no schema for room {ROOM}, ")
    row = pairing.see(binary(delta))
    assert row.state is not None
    assert row.state.note == "no schema"
