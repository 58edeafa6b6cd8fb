"""The ``state`` scenario of ``rtctl conformance client``: a stateful room as rtctl's gateway
streams it (docs/protocol.md §9, ``rtctl/services/state_live.py``), checked against the
state the client reports.

The full state goes ahead of the ``room.join`` reply, then two deltas: binary state
frames (:mod:`rtctl.protocol.frames`) on ``rtctl.v1.binary``, their JSON twin
``state.patch {room, message}`` on ``rtctl.v1``. The schema has a nested schema in a
map, a list and a string, so every container's delta form is exercised; its floats are
exact in float32 so the JSON the client reports compares equal.
"""

from __future__ import annotations

from typing import Any

from rtctl.conformance.scripted_play import Play
from rtctl.protocol.frames import state_frame
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, takes_binary
from rtctl.state import Encoder, Schema, float32, jsonform, uint32

__all__ = ["ROOM", "ConformanceState", "Spot", "play_state"]

ROOM = "conformance-state"


class Spot(Schema):
    x: float32
    y: float32


class ConformanceState(Schema):
    tick: uint32
    name: str
    players: dict[str, Spot]
    log: list[str]


class _Stream:
    """One room's encoder, sending in the encoding the connection agreed on."""

    def __init__(self, binary: bool) -> None:
        self.state = ConformanceState(tick=1, name="conformance")
        self.state.players["ada"] = Spot(x=1.5, y=-2.25)
        self.state.log.append("start")
        self.encoder = Encoder(self.state)
        self.binary = binary

    def full(self) -> bytes | dict[str, Any]:
        if self.binary:
            return state_frame(ROOM, self.encoder.full())
        self.encoder.commit()
        return {"room": ROOM, "message": self.encoder.full_object()}

    def delta(self) -> bytes | dict[str, Any]:
        if self.binary:
            return state_frame(ROOM, self.encoder.delta())
        base = self.encoder.version
        self.encoder.commit()
        return {"room": ROOM, "message": self.encoder.since_object(base)}


async def play_state(p: Play) -> None:
    conn = await p.connected()
    binary = takes_binary(conn.subprotocol)
    ran, other = ("state.binary", "state.json") if binary else ("state.json", "state.binary")
    p.verdicts.skip(other, f"the client agreed on {conn.subprotocol}: {ran} ran"
                    + ("" if binary else f" (offer {BINARY_SUBPROTOCOL} to decode binary)"))
    p.gw.state_rooms[ROOM] = ConformanceState
    p.gw.watch(ROOM)
    await conn.notify("conformance.sync", {"room": ROOM})
    join = await p.gw.take("room.join", p.timeout, f"room.join of {ROOM}")
    stream = _Stream(binary)

    async def send(message: bytes | dict[str, Any]) -> None:
        if isinstance(message, bytes):
            await join.conn.send_binary(message)
        else:
            await join.conn.notify("state.patch", message)

    await send(stream.full())  # ahead of the reply, as the gateway sends it (§9.1)
    await join.answer({"members": ["conformance"], "total": 1, "offset": 0, "epoch": "state",
                       "version": stream.encoder.version,
                       "encoding": "binary" if binary else "json"})
    stream.state.tick = 2
    stream.state.players["bob"] = Spot(x=-0.5, y=4.0)
    stream.state.log.append("bob joined")
    await send(stream.delta())
    stream.state.tick = 3
    del stream.state.players["ada"]
    stream.state.players["bob"].x = 8.25
    stream.state.name = "conformance, again"
    await send(stream.delta())
    await p.outcome("room.join")
    await join.conn.notify("conformance.report", {"room": ROOM})
    report = await p.gw.take("conformance.state", p.timeout, "conformance.state")
    truth = {"version": stream.encoder.version, "state": jsonform.full(stream.state)}
    params = report.params if isinstance(report.params, dict) else {}
    seen = {"version": params.get("version"), "state": params.get("state")}
    p.verdicts.judge(ran, seen == truth and params.get("room") == ROOM,
                     f"version {seen['version']} as sent" if seen == truth
                     else f"reported {seen}, the truth is {truth}")
