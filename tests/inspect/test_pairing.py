"""Replies pair with their requests by connection and id; the view shows the latency."""

from __future__ import annotations

import json

from rtctl.inspect.pairing import Pairing, Row
from rtctl.inspect.view import plain_line, rich_line
from rtctl.protocol.tap import IN, OUT, Disconnected, FrameSeen


def request(t: int, method: str, id: object, conn: str = "c-1") -> FrameSeen:
    text = json.dumps({"jsonrpc": "2.0", "method": method, "id": id})
    return FrameSeen.of(t, conn, "alice", IN, text)


def reply(t: int, id: object, conn: str = "c-1", error: bool = False) -> FrameSeen:
    body = {"error": {"code": -32601, "message": "no"}} if error else {"result": 1}
    return FrameSeen.of(t, conn, "alice", OUT, json.dumps({"jsonrpc": "2.0", **body, "id": id}))


def test_replies_pair_by_connection_and_id_with_their_latency() -> None:
    pairing = Pairing()
    rows = [pairing.see(e) for e in [
        request(100, "room.join", 1), request(110, "room.join", 1, conn="c-2"),
        request(120, "sys.ping", "a"), reply(150, "a"), reply(400, 1, error=True),
        reply(500, 1, conn="c-2"), reply(600, 1)]]
    assert [(r.method, r.latency_us) for r in rows] == [
        ("room.join", None), ("room.join", None), ("sys.ping", None),
        ("sys.ping", 30), ("room.join", 300), ("room.join", 390),
        (None, None),  # answered already: nothing left to pair with
    ]


def test_a_batch_pairs_element_by_element() -> None:
    pairing = Pairing()
    sent = FrameSeen.of(10, "c-1", "alice", IN, json.dumps([
        {"jsonrpc": "2.0", "method": "a.one", "id": 1},
        {"jsonrpc": "2.0", "method": "a.tick"},
        {"jsonrpc": "2.0", "method": "a.two", "id": 2}]))
    answer = FrameSeen.of(70, "c-1", "alice", OUT, json.dumps([
        {"jsonrpc": "2.0", "result": 1, "id": 1}, {"jsonrpc": "2.0", "result": 2, "id": 2}]))
    assert pairing.see(sent) == Row(sent, "a.one,a.tick,a.two")
    assert pairing.see(answer) == Row(answer, "a.one,a.two", 60)


def test_a_disconnect_forgets_unanswered_requests() -> None:
    pairing = Pairing()
    pairing.see(request(1, "slow.thing", 5))
    pairing.see(Disconnected(t_us=2, conn="c-1", user="alice", code=1006, reason=""))
    assert pairing.see(reply(3, 5)) == Row(reply(3, 5))


def test_lines_show_the_pairing() -> None:
    pairing = Pairing()
    pairing.see(request(1_000, "room.join", 7))
    row = pairing.see(reply(3_500, 7, error=True))
    text = rich_line(row).plain
    for part in ("←", "error -32601", "room.join", "#7", "2.50 ms"):
        assert part in text
    plain = json.loads(plain_line(row))
    assert (plain["event"], plain["method"], plain["latency_us"]) == ("frame", "room.join", 2500)
