"""Server checks of the connection itself: token carriers and refusals at the upgrade (§2),
subprotocol negotiation (§2.3), close codes (§3.3, §6.2, §11) and heartbeats (§7)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rtctl.conformance.server_probe import Carrier, Check, CheckFailed, Probe, Target, expect
from rtctl.protocol.codes import CloseCode
from rtctl.protocol.upgrade import BINARY_SUBPROTOCOL, SUBPROTOCOL

__all__ = ["CHECKS"]


def _carrier(carrier: Carrier) -> Check:
    async def run(probe: Probe) -> str:
        conn = await probe.connect(carrier=carrier)
        info = await conn.result("session.info")
        expect(isinstance(info, dict) and bool(info.get("user")),
               f"session.info after a {carrier} token answered {info!r}")
        return f"accepted; session.info user {info['user']!r}"

    where = {"header": "Authorization: Bearer", "query": "the token= query parameter",
             "subprotocol": "a rtctl.bearer.<jwt> subprotocol"}[carrier]
    return Check(f"auth.{carrier}", "§2.2", f"a token in {where} is accepted", run)


def _refusal(name: str, title: str, token: Callable[[Target], str] | None) -> Check:
    async def run(probe: Probe) -> str:
        if token is None:
            status = await probe.refused(carrier="none")
        else:
            status = await probe.refused(token=token(probe.target))
        expect(status == 401, "the upgrade was accepted" if status is None
               else f"refused with HTTP {status}, not 401")
        return "HTTP 401 before any WebSocket"

    return Check(f"auth.{name}", "§2.4", title, run)


async def binary_preferred(probe: Probe) -> str:
    both = await probe.connect(subprotocols=(SUBPROTOCOL, BINARY_SUBPROTOCOL))
    expect(both.subprotocol == BINARY_SUBPROTOCOL,
           f"offered both, the server picked {both.subprotocol!r}, not {BINARY_SUBPROTOCOL}")
    await both.ws.close()  # one connection at a time: a per-user limit of 1 is allowed (§11)
    plain = await probe.connect(subprotocols=(SUBPROTOCOL,))
    expect(plain.subprotocol == SUBPROTOCOL,
           f"offered {SUBPROTOCOL} only, the server picked {plain.subprotocol!r}")
    return f"{BINARY_SUBPROTOCOL} over {SUBPROTOCOL}; {SUBPROTOCOL} alone when offered alone"


def _closes(name: str, section: str, title: str, code: CloseCode,
            frame: Callable[[Probe], tuple[str | bytes, bool]],
            hint: Callable[[Probe], str] = lambda _: "") -> Check:
    """A check that ``frame`` gets close ``code``; ``hint`` adds what to try when no close
    frame came at all."""
    async def run(probe: Probe) -> str:
        conn = await probe.connect()
        message, text = frame(probe)
        await conn.send(message, text=text)
        seen = await conn.closed()
        expect(seen == code, f"expected close {int(code)}, got "
               + (f"no close frame within {probe.target.timeout:g} s{hint(probe)}"
                  if seen is None else str(seen)))
        return f"closed {int(code)}"

    return Check(name, section, title, run)


def _oversized(probe: Probe) -> tuple[str | bytes, bool]:
    # A JSON string one byte over the limit: valid JSON, so only its size is wrong.
    return '"' + "x" * (probe.target.max_message_size - 1) + '"', True


async def server_pings(probe: Probe) -> str:
    conn = await probe.connect()
    interval, slack = probe.target.ping_interval, probe.target.timeout
    try:  # a ping is owed within one interval of the upgrade; the timeout covers the transit
        await asyncio.wait_for(conn.pinged.wait(), interval + slack)
    except TimeoutError:
        raise CheckFailed(f"no ping within {interval + slack:g} s (--ping-interval {interval:g} s "
                          f"+ --timeout {slack:g} s)") from None
    await conn.result("sys.ping")  # the connection survived answering it
    return "a ping arrived and was answered"


async def sys_ping(probe: Probe) -> str:
    conn = await probe.connect()
    result = await conn.result("sys.ping")
    expect(isinstance(result, dict) and isinstance(result.get("time"), int | float),
           f"sys.ping answered {result!r}, not {{time: <ms>}}")
    return f"time {result['time']}"


CHECKS = (
    _carrier("header"),
    _carrier("query"),
    _carrier("subprotocol"),
    _refusal("no-token", "no token: HTTP 401 before any WebSocket", None),
    _refusal("bad-signature", "a token signed with another key: HTTP 401",
             lambda target: target.minted(secret_suffix="-not-the-gateways")),
    _refusal("expired", "an expired token: HTTP 401",
             lambda target: target.minted(age=7200.0)),
    Check("subprotocol.binary-preferred", "§2.3", f"{BINARY_SUBPROTOCOL} is picked over "
          f"{SUBPROTOCOL}", binary_preferred),
    _closes("close.binary-frame", "§3.3", "a binary frame from the client: close 1003",
            CloseCode.UNSUPPORTED_DATA, lambda _: (b'{"jsonrpc": "2.0"}', False)),
    _closes("close.too-big", "§11", "a message over the size limit: close 1009",
            CloseCode.MESSAGE_TOO_BIG, _oversized,
            lambda probe: f" of a message of {probe.target.max_message_size + 1} bytes (is the "
                          "server's limit higher? give it as --max-message-size)"),
    _closes("close.invalid-utf8", "§6.2", "a text frame of invalid UTF-8: close 1007",
            CloseCode.INVALID_PAYLOAD, lambda _: (b'"\xff\xfe"', True)),
    Check("heartbeat.server-ping", "§7", "the server pings within --ping-interval",
          server_pings),
    Check("heartbeat.sys-ping", "§7", "sys.ping answers the server's time", sys_ping),
)
