"""Server checks of JSON-RPC 2.0 framing (docs/protocol.md §3, §6.1): the edge cases a
hand-written gateway gets wrong first. JSON-RPC 2.0 §4-§6 is the tie-breaker."""

from __future__ import annotations

from typing import Any

from rtctl.conformance.server_probe import Check, Conn, Probe, expect
from rtctl.protocol.codes import ErrorCode

__all__ = ["CHECKS"]


def _error_code(response: Any) -> Any:
    error = response.get("error") if isinstance(response, dict) else None
    return error.get("code") if isinstance(error, dict) else None


async def _still_open(conn: Conn) -> None:
    """The connection still answers a call after what went before (§3.1: errors keep it)."""
    response = await conn.call("sys.ping", id="still-open")
    expect("result" in response, f"sys.ping afterwards answered {response!r}")


async def parse_error(probe: Probe) -> str:
    conn = await probe.connect()
    await conn.send('{"jsonrpc": "2.0", "method": ')
    response = await conn.recv_json()
    expect(_error_code(response) == ErrorCode.PARSE_ERROR,
           f"expected error {ErrorCode.PARSE_ERROR}, got {response!r}")
    expect(isinstance(response, dict) and "id" in response and response["id"] is None,
           f"a parse error's id must be null (JSON-RPC 2.0 §5), got {response.get('id')!r}")
    await _still_open(conn)
    return "-32700 with id null; the connection stayed open"


async def invalid_request(probe: Probe) -> str:
    conn = await probe.connect()
    await conn.send_json({"jsonrpc": "1.0", "method": "sys.ping", "id": 7})
    response = await conn.recv_json()
    expect(_error_code(response) == ErrorCode.INVALID_REQUEST,
           f"expected error {ErrorCode.INVALID_REQUEST}, got {response!r}")
    await _still_open(conn)
    return "-32600 for jsonrpc 1.0; the connection stayed open"


async def empty_batch(probe: Probe) -> str:
    conn = await probe.connect()
    await conn.send("[]")
    response = await conn.recv_json()
    expect(isinstance(response, dict),
           f"an empty batch is answered by one object, not {response!r}")
    expect(_error_code(response) == ErrorCode.INVALID_REQUEST and response.get("id", 0) is None,
           f"expected error -32600 with id null, got {response!r}")
    return "one -32600 object with id null"


async def mixed_batch(probe: Probe) -> str:
    conn = await probe.connect()
    await conn.send_json([
        {"jsonrpc": "2.0", "method": "sys.echo", "params": ["a"], "id": 1},
        {"jsonrpc": "2.0", "method": "sys.echo", "params": ["note"]},
        {"jsonrpc": "2.0", "method": "sys.echo", "params": {"b": 2}, "id": "two"},
    ])
    response = await conn.recv_json()
    expect(isinstance(response, list), f"a batch is answered by an array, not {response!r}")
    by_id = {r.get("id"): r.get("result") for r in response if isinstance(r, dict)}
    expect(len(response) == 2 and by_id == {1: ["a"], "two": {"b": 2}},
           f"expected the two calls' results and nothing for the notification, got {response!r}")
    return "two replies, matched by id; none for the notification"


async def notification_unanswered(probe: Probe) -> str:
    conn = await probe.connect()
    await conn.send_json({"jsonrpc": "2.0", "method": "sys.ping"})
    await conn.send_json({"jsonrpc": "2.0", "method": "sys.ping", "id": 2})
    response = await conn.recv_json()
    expect(isinstance(response, dict) and response.get("id") == 2,
           f"after a notification the next message must answer the call, got {response!r}")
    return "no reply to the notification; the next call's reply came first"


async def method_not_found(probe: Probe) -> str:
    conn = await probe.connect()
    code = await conn.error_code("conformance.no-such-method")
    expect(code == ErrorCode.METHOD_NOT_FOUND, f"expected {ErrorCode.METHOD_NOT_FOUND}, got {code}")
    return "-32601"


async def invalid_params(probe: Probe) -> str:
    conn = await probe.connect()
    code = await conn.error_code("presence.get", {"users": "not-a-list"})
    expect(code == ErrorCode.INVALID_PARAMS, f"expected {ErrorCode.INVALID_PARAMS}, got {code}")
    return "-32602 for presence.get {users: \"not-a-list\"}"


async def id_types(probe: Probe) -> str:
    conn = await probe.connect()
    for id in ("conformance-7", 7, -3):
        response = await conn.call("sys.ping", id=id)  # reply() checks value and type
        expect("result" in response, f"sys.ping id {id!r} answered {response!r}")
    return "string and number ids came back as sent"


async def rpc_reserved(probe: Probe) -> str:
    conn = await probe.connect()
    code = await conn.error_code("rpc.discover")
    expect(code == ErrorCode.METHOD_NOT_FOUND,
           f"rpc.* names are reserved (JSON-RPC 2.0 §4): expected -32601, got {code}")
    return "-32601 for rpc.discover"


CHECKS = (
    Check("jsonrpc.parse-error", "§3.1", "invalid JSON: -32700 with id null, connection kept",
          parse_error),
    Check("jsonrpc.invalid-request", "§3.1", "not a JSON-RPC 2.0 request: -32600", invalid_request),
    Check("jsonrpc.empty-batch", "§3.2", "an empty batch: one -32600 with id null", empty_batch),
    Check("jsonrpc.batch-mixed", "§3.2", "a batch of calls and a notification: one reply per call",
          mixed_batch),
    Check("jsonrpc.notification", "§3.1", "a notification gets no reply", notification_unanswered),
    Check("jsonrpc.method-not-found", "§6.1", "an unknown method: -32601", method_not_found),
    Check("jsonrpc.invalid-params", "§6.1", "params of the wrong type: -32602", invalid_params),
    Check("jsonrpc.id-types", "§3.1", "string and number ids are echoed unchanged", id_types),
    Check("jsonrpc.rpc-reserved", "§3.1", "rpc.* methods are reserved: -32601", rpc_reserved),
)
