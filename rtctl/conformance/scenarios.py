"""The scenarios of ``rtctl conformance client``: what the scripted gateway does, and the
checks it makes of the client under test (docs/conformance.md lists them).

Each scenario plays against the client's current connection and records a verdict for
each of its checks in a :class:`Verdicts`; :mod:`rtctl.conformance.scripted_run` plays
them in runs and turns what was not reached into failures. Scenarios synchronise on what
the client sends (its calls, its reports, its upgrade requests), never on time, except
for the bounded watch after a close the client MUST NOT reconnect after.
"""

from __future__ import annotations

import asyncio
import time

from rtctl.client.backoff import Backoff
from rtctl.conformance.scripted import NoShow
from rtctl.conformance.scripted_play import Check, Play, Scenario
from rtctl.conformance.scripted_state import play_state
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.streams import StreamPosition

__all__ = ["BACKOFF_SLACK", "SCENARIOS", "WATCH_WINDOW"]

BACKOFF = Backoff()  # §8.2's numbers, the SDK's defaults
BACKOFF_SLACK = 0.25  # s on top of a nominal delay still counted "within" the protocol's numbers
WATCH_WINDOW = 1.5  # s watched for a reconnection that MUST NOT come (4009, 4003)
REPLAY_EPOCH = "conformance-epoch"


async def _ping(p: Play) -> None:
    conn = await p.connected()
    started = time.perf_counter()
    pong = await conn.ws.ping(b"conformance")
    try:
        async with asyncio.timeout(p.timeout):
            await pong
    except TimeoutError:
        raise NoShow(f"no pong within {p.timeout:g} s") from None
    p.verdicts.judge("heartbeat.pong", True,
                     f"pong after {(time.perf_counter() - started) * 1000:.1f} ms")


CONFLICT_MESSAGE = "Conflict: the entity changed"
CONFLICT_DATA = {"version": 7, "value": "x"}


async def _error(p: Play) -> None:
    conn = await p.connected()
    await conn.notify("conformance.call", {"method": "conflict.here", "params": {"n": 1}})
    call = await p.gw.take("conflict.here", p.timeout, "call of conflict.here")
    await call.fail(ErrorCode.CONFLICT, CONFLICT_MESSAGE, CONFLICT_DATA)
    sent = {"code": ErrorCode.CONFLICT.value, "message": CONFLICT_MESSAGE, "data": CONFLICT_DATA}
    seen = (await p.outcome("conflict.here")).get("error")
    p.verdicts.judge("call.error-intact", seen == sent,
                     f"reported {seen}" + ("" if seen == sent else f"; sent {sent}"))


async def _order(p: Play) -> None:
    conn = await p.connected()
    for name in ("a", "b"):
        await conn.notify("conformance.call", {"method": f"order.{name}", "params": [name]})
    first = await p.gw.take("order.a", p.timeout, "call of order.a")
    second = await p.gw.take("order.b", p.timeout, "call of order.b")
    await second.answer("b")  # the later call is answered first (§3.1: ids match them)
    await first.answer("a")
    got = {name: (await p.outcome(f"order.{name}")).get("result") for name in ("a", "b")}
    p.verdicts.judge("call.reply-order", got == {"a": "a", "b": "b"},
                     f"order.a got {got['a']!r}, order.b got {got['b']!r} (replies sent b, a)")


def _floor(attempt: int) -> float:
    """§8.2's MUST: whatever its numbers, attempt ``n`` waits at least the lower edge of the
    protocol's own schedule, half its nominal delay (50 ms, 100 ms, ... up to 2.5 s)."""
    return BACKOFF.delay(attempt) * (1 - BACKOFF.jitter)


def _schedule(attempt: int, delay: float) -> str:
    """Where ``delay`` lies against the protocol's own numbers (what rtctl's SDK does), for
    the detail: other numbers are allowed (§8.2), so this never fails a check."""
    low, high = _floor(attempt), BACKOFF.delay(attempt)
    where = ("within" if low <= delay <= high + BACKOFF_SLACK
             else "below" if delay < low else "above")
    return (f"{where} the protocol's own {low * 1000:.0f}-{high * 1000:.0f} ms "
            f"(+{BACKOFF_SLACK * 1000:.0f})")


async def _close_reconnects(p: Play, code: CloseCode) -> None:
    conn = await p.connected()
    p.gw.forget_arrivals()
    p.ended(conn, backoff=True)
    floor = _floor(p.streak)
    closed_at = asyncio.get_running_loop().time()
    await conn.close(code, "conformance")
    upgrade = await p.gw.next_upgrade(p.timeout, f"reconnection after {code}")
    # Measured from sending the close to the upgrade: never shorter than the client's wait.
    delay = upgrade.at - closed_at
    ok = delay >= floor and upgrade.refused is None
    p.verdicts.judge(f"close.{code}-reconnect", ok,
                     f"reconnected after {delay * 1000:.0f} ms; attempt {p.streak} waits at "
                     f"least {floor * 1000:.0f} ms; {_schedule(p.streak, delay)}"
                     + (f"; refused: {upgrade.refused}" if upgrade.refused else ""))
    if code == CloseCode.GOING_AWAY:
        expected = conn.recovery_tokens[-1] if conn.recovery_tokens else None
        p.verdicts.judge("recovery.token-offered",
                         expected is not None and upgrade.recover == expected,
                         f"offered recover={upgrade.recover!r}, session.info gave {expected!r}")


async def _close_1001(p: Play) -> None:
    await _close_reconnects(p, CloseCode.GOING_AWAY)


async def _close_4008(p: Play) -> None:
    await _close_reconnects(p, CloseCode.SLOW_CONSUMER)


async def _close_4001(p: Play) -> None:
    conn = await p.connected()
    p.gw.forget_arrivals()
    p.ended(conn, backoff=False)
    p.gw.expired_before = time.monotonic()
    await conn.close(CloseCode.TOKEN_EXPIRED, "token expired")
    upgrade = await p.gw.next_upgrade(p.timeout, "reconnection after 4001")
    p.verdicts.judge("close.4001-new-token", upgrade.refused is None,
                     "reconnected with a token fetched after the close" if upgrade.refused is None
                     else f"reconnected with a token it had before (refused: {upgrade.refused})")


async def _drop(p: Play) -> None:
    conn = await p.connected()
    key = "conformance-key-1"
    await conn.notify("conformance.call", {"method": "drop.keyed", "params": {"n": 1},
                                           "idempotency_key": key})
    await conn.notify("conformance.call", {"method": "drop.plain", "params": {"n": 2}})
    keyed = await p.gw.take("drop.keyed", p.timeout, "call of drop.keyed")
    await p.gw.take("drop.plain", p.timeout, "call of drop.plain")
    p.gw.forget_arrivals()
    p.ended(conn, backoff=True)
    conn.drop()
    again = await p.gw.take("drop.keyed", p.timeout, "drop.keyed sent again after the drop")
    await again.answer({"done": 1})
    same = again.request.idempotency_key == keyed.request.idempotency_key == key
    result = (await p.outcome("drop.keyed")).get("result")
    p.verdicts.judge("drop.keyed-resent", same and again.conn is not conn and result == {"done": 1},
                     f"sent again with idempotency_key {again.request.idempotency_key!r} "
                     f"(first {keyed.request.idempotency_key!r}), reported {result!r}")
    # A call sent again instead of reported fails at once, not after a wait for its outcome.
    key, reported = await p.gw.take_first(("outcome:drop.plain", "drop.plain"), p.timeout,
                                          "conformance.outcome for drop.plain")
    if key == "drop.plain":
        await reported.answer({"done": 2})
        p.verdicts.judge("drop.unkeyed-lost", False, "drop.plain, which had no idempotency_key, "
                         "was sent again on the next connection")
        return
    error = reported.params.get("error") if isinstance(reported.params, dict) else None
    lost = isinstance(error, dict) and error.get("code") is None
    resent = p.gw.waiting("drop.plain")
    p.verdicts.judge("drop.unkeyed-lost", lost and not resent,
                     f"reported {error!r}" + (f"; sent again {resent} time(s)" if resent else ""))


async def _replay(p: Play) -> None:
    conn = await p.connected()
    room = "conformance-replay"
    p.gw.watch(room)
    await conn.notify("conformance.call", {"method": "room.join", "params": {"room": room}})
    join = await p.gw.take("room.join", p.timeout, f"room.join of {room}")
    await join.answer({"members": ["conformance"], "total": 1, "offset": 0,
                       "epoch": REPLAY_EPOCH})
    await p.outcome("room.join")
    for offset in (1, 2, 3):
        await conn.notify("room.message", {"room": room, "from": "someone", "data": {"n": offset},
                                           "offset": offset, "epoch": REPLAY_EPOCH})
    # A call asked for after the messages: once it arrives, the client has had them (§10).
    await conn.notify("conformance.call", {"method": "replay.sync"})
    sync = await p.gw.take("replay.sync", p.timeout, "call of replay.sync")
    await sync.answer(True)
    p.ended(conn, backoff=True)
    conn.drop()
    again = await p.gw.take("room.join", p.timeout, f"room.join of {room} after the drop")
    last = StreamPosition(3, REPLAY_EPOCH)
    since = again.params.get("since") if isinstance(again.params, dict) else None
    p.gw.unwatch(room, last)
    await again.answer({"members": ["conformance"], "total": 1, **last.to_json(),
                        "recovered": True, "replayed": 0})
    p.verdicts.judge("replay.since", since == last.to_json(),
                     f"joined again with since={since!r}; the last message had {last.to_json()}")


async def _must_not_reconnect(p: Play, code: CloseCode) -> None:
    conn = await p.connected()
    p.gw.forget_arrivals()
    await conn.close(code, "conformance")
    closed_at = asyncio.get_running_loop().time()
    try:  # the one timed wait: nothing to synchronise on when the right answer is silence
        upgrade = await p.gw.next_upgrade(WATCH_WINDOW, "reconnection")
    except NoShow:
        p.verdicts.judge(f"close.{code}-no-reconnect", True,
                         f"no reconnection within {WATCH_WINDOW:g} s")
        return
    p.verdicts.judge(f"close.{code}-no-reconnect", False,
                     f"reconnected after {(upgrade.at - closed_at) * 1000:.0f} ms")


async def _close_4009(p: Play) -> None:
    await _must_not_reconnect(p, CloseCode.SESSION_RESUMED)


async def _close_4003(p: Play) -> None:
    await _must_not_reconnect(p, CloseCode.KICKED)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ping", (Check("heartbeat.pong", "§7", "answers a server ping with a pong"),),
             _ping),
    Scenario("error", (Check("call.error-intact", "§6.1",
                             "reports an error reply's code, message and data intact"),), _error),
    Scenario("order", (Check("call.reply-order", "§3.1",
                             "matches replies to calls by id, whatever their order"),), _order),
    Scenario("close-1001", (
        Check("close.1001-reconnect", "§8.2", "reconnects after 1001, no sooner than §8.2 allows"),
        Check("recovery.token-offered", "§8.3",
              "offers the recovery token session.info gave when it reconnects")), _close_1001),
    Scenario("close-4008", (Check("close.4008-reconnect", "§8.2",
                                  "reconnects after 4008, no sooner than §8.2 allows"),),
             _close_4008),
    Scenario("close-4001", (Check("close.4001-new-token", "§8.1, §6.3",
                                  "reconnects after 4001 with a new token"),), _close_4001),
    Scenario("drop", (
        Check("drop.keyed-resent", "§3.4",
              "sends a keyed call again with its idempotency_key after a drop"),
        Check("drop.unkeyed-lost", "§3.4, §6.3",
              "reports a call without a key as connection lost after a drop")), _drop),
    Scenario("replay", (Check("replay.since", "§8.4",
                              "joins its room again with since = the last position seen"),),
             _replay),
    Scenario("state", (
        Check("state.binary", "§9.2", "decodes binary state frames to the truth"),
        Check("state.json", "§9.3", "applies state.patch notifications to the truth")),
             play_state),
    Scenario("close-4009", (Check("close.4009-no-reconnect", "§8.3, §6.3",
                                  "does not reconnect after 4009"),), _close_4009, final=True),
    Scenario("close-4003", (Check("close.4003-no-reconnect", "§6.3",
                                  "does not reconnect after 4003"),), _close_4003, final=True),
)
