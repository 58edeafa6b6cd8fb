"""Server checks of the built-in services as a client sees them: presence (§4, §5), rooms and
stream positions (§4, §8.4), recovery (§8.3) and state frames (§9)."""

from __future__ import annotations

from typing import Any

from rtctl.conformance.server_probe import Check, CheckSkipped, Conn, Probe, expect
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.frames import parse_state_frame
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, SUBPROTOCOL
from rtctl.state.decoder import Decoder
from rtctl.state.reflect import build
from rtctl.state.wire import StateError

__all__ = ["CHECKS"]


def _room(probe: Probe, name: str) -> str:
    """A room of this run only, so runs against a live gateway do not meet."""
    return f"conformance-{probe.target.run_id}-{name}"


async def _user(conn: Conn) -> str:
    info = await conn.result("session.info")
    expect(isinstance(info, dict) and isinstance(info.get("user"), str),
           f"session.info answered {info!r}")
    return str(info["user"])


async def _two_users(probe: Probe) -> tuple[Conn, Conn, str]:
    """Alice's and bob's connections, and alice's user; skips when they are one user (the
    same --token twice), as the check would blame the server for that."""
    alice, bob = await probe.connect(0), await probe.connect(1)
    user = await _user(alice)
    if await _user(bob) == user:
        raise CheckSkipped(f"alice and bob are the same user ({user!r}): needs tokens of two "
                           "different users")
    return alice, bob, user


async def presence_changed(probe: Probe) -> str:
    alice, bob, user = await _two_users(probe)
    await bob.result("presence.subscribe", {"users": [user]})
    text = f"conformance {probe.target.run_id}"
    await alice.result("presence.set", {"status": "busy", "text": text})
    seen = await bob.notification("presence.changed", lambda p: p.get("text") == text)
    expect(seen.get("user") == user and seen.get("status") == "busy",
           f"expected presence.changed for {user} busy, got {seen!r}")
    return f"bob saw {user} busy"


async def presence_get(probe: Probe) -> str:
    alice = await probe.connect(0)
    user = await _user(alice)
    await alice.result("presence.set", {"status": "away", "text": None})
    got = await alice.result("presence.get", {"users": [user]})
    entry = got.get(user) if isinstance(got, dict) else None
    expect(isinstance(entry, dict) and entry.get("status") == "away",
           f"presence.get after presence.set away answered {got!r}")
    return f"{user} away"


async def _both_in(probe: Probe, name: str) -> tuple[str, Conn, Conn, dict[str, Any]]:
    """A fresh room that alice then bob joined, and alice's join reply (her position)."""
    room = _room(probe, name)
    alice, bob, _ = await _two_users(probe)
    joined = await alice.result("room.join", {"room": room})
    await bob.result("room.join", {"room": room})
    return room, alice, bob, joined


async def room_messages(probe: Probe) -> str:
    room, alice, bob, _ = await _both_in(probe, "lobby")
    sent = [await alice.result("room.publish", {"room": room, "data": {"n": n}}) for n in (1, 2)]
    seen = [await bob.notification("room.message", lambda p: p.get("room") == room)
            for _ in sent]
    expect([m.get("data") for m in seen] == [{"n": 1}, {"n": 2}],
           f"bob saw {[m.get('data') for m in seen]}, not the two messages in order")
    for message, position in zip(seen, sent, strict=True):
        expect({"offset": message.get("offset"), "epoch": message.get("epoch")} == position,
               f"room.message at {message.get('offset')}/{message.get('epoch')} does not match "
               f"the publish reply {position!r}")
    expect(seen[1]["offset"] > seen[0]["offset"], f"offsets did not increase: {seen!r}")
    return f"offsets {seen[0]['offset']} < {seen[1]['offset']}, epoch {seen[0]['epoch']!r}"


async def room_leave(probe: Probe) -> str:
    room, alice, bob, _ = await _both_in(probe, "leave")
    bob_user = await _user(bob)
    await bob.result("room.leave", {"room": room})
    members = await alice.result("room.members", {"room": room})
    listed = members.get("members") if isinstance(members, dict) else members
    expect(isinstance(listed, list) and bob_user not in listed,
           f"room.members after bob left answered {members!r}")
    return f"members after leaving: {listed!r}"


async def publish_not_member(probe: Probe) -> str:
    conn = await probe.connect()
    code = await conn.error_code("room.publish", {"room": _room(probe, "elsewhere"), "data": 1})
    expect(code == ErrorCode.FORBIDDEN, f"expected {ErrorCode.FORBIDDEN}, got {code}")
    return "-32003"


async def _resume(probe: Probe, old: Conn) -> Conn:
    """A new connection offering ``old``'s recovery token at the upgrade (§8.3)."""
    info = await old.result("session.info")
    token = info.get("recovery_token") if isinstance(info, dict) else None
    expect(isinstance(token, str) and bool(token), f"session.info has no recovery_token: {info!r}")
    new = await probe.connect(0, recover=str(token))
    resumed = await new.result("session.info")
    expect(resumed.get("resumed") is True,
           f"resumed is {resumed.get('resumed')!r} (resume_error {resumed.get('resume_error')!r})")
    return new


async def recovery_resume(probe: Probe) -> str:
    old = await probe.connect(0)
    await _resume(probe, old)
    code = await old.closed()
    expect(code == CloseCode.SESSION_RESUMED,
           f"the older connection got close {code}, not {int(CloseCode.SESSION_RESUMED)}")
    return f"resumed: true; the older connection closed {int(CloseCode.SESSION_RESUMED)}"


async def recovery_replay(probe: Probe) -> str:
    room, old, bob, since = await _both_in(probe, "replay")
    for n in (1, 2):
        await bob.result("room.publish", {"room": room, "data": {"missed": n}})
    new = await _resume(probe, old)
    joined = await new.result("room.join", {"room": room, "since": {
        "offset": since.get("offset"), "epoch": since.get("epoch")}})
    expect(joined.get("recovered") is True, f"room.join since answered {joined!r}")
    # Replayed messages travel on the events lane, so they may overtake the reply or
    # follow it (§10): both orders conform.
    replayed = [(await new.notification("room.message", lambda p: p.get("room") == room))
                .get("data") for _ in range(2)]
    expect(replayed == [{"missed": 1}, {"missed": 2}], f"replayed {replayed!r}")
    return f"replayed {len(replayed)}, recovered: true"


async def _stateful_room(probe: Probe, conn: Conn) -> tuple[str, dict[str, Any]]:
    """The first of ``--state-room`` the server says is stateful, with its schema (§9.1)."""
    tried = []
    for kind in probe.target.state_rooms:
        room = f"{kind}:{_room(probe, 'state')}"
        response = await conn.call("state.schema", {"room": room})
        if "result" in response:
            return room, response["result"]
        tried.append(f"{kind}: {response.get('error', {}).get('message')}")
    raise CheckSkipped("no stateful room on this server (" + "; ".join(tried) + "): start the "
                       "gateway with --room-type drift, or give --state-room NAME")


def _decoder(schema: dict[str, Any]) -> Decoder:
    try:
        return Decoder(build(schema))
    except (StateError, ValueError, TypeError) as exc:
        raise CheckSkipped(f"state.schema answered a schema this kit cannot build: {exc}") from None


async def state_binary(probe: Probe) -> str:
    conn = await probe.connect(subprotocols=(BINARY_SUBPROTOCOL, SUBPROTOCOL))
    room, schema = await _stateful_room(probe, conn)
    joined = await conn.result("room.join", {"room": room})
    name, message = parse_state_frame(await conn.recv_binary())
    expect(name == room, f"the state frame names room {name!r}, not {room!r}")
    decoder = _decoder(schema)
    decoder.apply(message)
    expect(decoder.version == joined.get("version"),
           f"the state frame is version {decoder.version}, the join said {joined.get('version')}")
    return f"{room}: a full state of version {decoder.version}, {len(message)} bytes"


async def state_json(probe: Probe) -> str:
    conn = await probe.connect(subprotocols=(SUBPROTOCOL,))
    room, schema = await _stateful_room(probe, conn)
    joined = await conn.result("room.join", {"room": room})
    patch = await conn.notification("state.patch", lambda p: p.get("room") == room)
    decoder = _decoder(schema)
    decoder.apply(patch.get("message") or {})
    expect(decoder.version == joined.get("version"),
           f"state.patch is version {decoder.version}, the join said {joined.get('version')}")
    expect(not conn.binaries, f"{len(conn.binaries)} binary frame(s) on {SUBPROTOCOL}")
    return f"{room}: state.patch of version {decoder.version}"


CHECKS = (
    Check("presence.changed", "§5", "a subscriber sees presence.changed after presence.set",
          presence_changed),
    Check("presence.get", "§4", "presence.get answers the status presence.set stored",
          presence_get),
    Check("rooms.message", "§8.4", "members get room.message in order, offsets increasing",
          room_messages),
    Check("rooms.leave", "§4", "a member that left is no longer listed", room_leave),
    Check("rooms.not-member", "§6.1", "publishing to a room not joined: -32003",
          publish_not_member),
    Check("recovery.resume", "§8.3", "a recovery token resumes the session; the older "
          "connection is closed 4009", recovery_resume),
    Check("recovery.replay", "§8.4", "room.join since replays the messages missed",
          recovery_replay),
    Check("state.binary", "§9.2", f"a stateful room's state arrives as a binary frame on "
          f"{BINARY_SUBPROTOCOL}", state_binary),
    Check("state.json", "§9.3", f"the state.patch JSON twin arrives on {SUBPROTOCOL}",
          state_json),
)
