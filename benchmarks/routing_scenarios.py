"""One run of each measurement ``routing.py`` makes (issue 14's done-when list).

Each function starts its own ``rtctl serve`` with the flags it is about, connects
:class:`~routing_client.Member`\\ s, loads the gateway in an open loop for a warm-up
and then a measured window, and returns what it saw. The variant each takes (lanes
or not, a slow client or not, a batch window or none, a flooder or not) is the only
difference between the runs ``routing.py`` sets side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from large_room import rss_bytes
from loadgen import process_cpu_seconds
from routing_client import (
    Gateway,
    Member,
    connect,
    gateway,
    paced,
    percentile_ms,
    quiet,
    scrape,
)

from rtctl.profiler.lanes import lanes_between
from rtctl.profiler.report import fetch_lanes
from rtctl.protocol.codes import ErrorCode
from rtctl.protocol.lanes import Lane

__all__ = [
    "BUDGET",
    "SLOW_GRACE",
    "Fanout",
    "Inbound",
    "Shaping",
    "SlowConsumer",
    "fanout",
    "inbound",
    "shaping",
    "slow_consumer",
]

PAD = "x" * 880  # a room.message of about 1 KiB
CLOSED = "rtctl_connections_closed_total"

BUDGET = 32 * 1024  # bytes/s: --outbound-rate 32KiB/s
FLOOD_RATE = 100  # room.publish/s, about 100 KiB/s of room.message
PING_EVERY = 0.02  # s between two sys.ping calls
KEYS = 4  # coalescing keys the flood's coalescible half cycles through

SLOW_GRACE = 2.0  # --slow-consumer-grace
SLOW_FLAGS = ["--slow-consumer-grace", "2s", "--outbound-rate", "1MiB/s",
              "--outbound-burst", "64KiB"]  # pressure mark: min(max_outbox_bytes // 2, burst)
SLOW_MARK = 64 * 1024
SLOW_PAD = "x" * 4000  # 75 room.message/s of about 4 KiB: 300 KiB/s to each member, so the
SLOW_RATE = 75  # 1 MiB outbox bound is 3 s past the mark: the grace, not the bound, closes
READERS = 10  # members that keep reading beside the slow one
SLOW_BUFFER = 4096  # the slow client's SO_RCVBUF (the kernel doubles it)
SLOW_WINDOW = 14.0  # s: the kernel's buffers (the gateway's socket takes up to tcp_wmem's
# 4 MiB on loopback) fill, then the outbox passes the mark, the grace runs out, it closes
CLOSE_WAIT = 30.0  # s after the stop to wait for the 4008 at most
POLL = 0.1  # s between two samples of /metrics and RSS

TICK = 0.25  # s: the fan-out's publisher sends PER_TICK messages together every TICK
PER_TICK = 2
CONNECT_BATCH = 100
QUIET = 0.5  # s without a frame: the joins' room.diffs are delivered, the fan-out may start

CALM_EVERY, FLOOD_EVERY = 1 / 20, 1 / 200  # sys.ping pace: under and over --inbound-rate 50/s
CALM = 10  # clients calling under the rate


async def _joined(members: list[Member], room: str) -> None:
    for start in range(0, len(members), CONNECT_BATCH):
        await asyncio.gather(*(m.call("room.join", {"room": room})
                               for m in members[start:start + CONNECT_BATCH]))


def _publish(publisher: Member, room: str, pad: str, **tags: str) -> None:
    """``room.publish`` as a notification (no reply), stamped with its send time."""
    publisher.send({"jsonrpc": "2.0", "method": "room.publish",
                    "params": {"room": room, "data": {"t": time.perf_counter(), "pad": pad},
                               **tags}})


@dataclass
class Shaping:
    lanes: bool
    received_bps: float  # payload bytes/s the limited client got, replies included
    offered_bps: float  # the flood, as room.message bytes/s at one member
    ping_p50_ms: float
    ping_p99_ms: float  # unanswered pings count as their wait so far (a lower bound)
    unanswered: int
    dropped_telemetry: int  # the outboxes' lane counts over the window, from /metrics
    coalesced_events: int
    elsewhere: int  # dropped or coalesced in any other lane (none expected)
    closed: int  # the limited client's close code (0: still open)


async def shaping(*, lanes: bool, seconds: float, warmup: float, transport: str) -> Shaping:
    """A client limited to 32 KiB/s in a room flooded at 100 KiB/s, pinging every 20 ms.

    The flood alternates droppable ``telemetry`` messages and coalescible ``events``
    ones on :data:`KEYS` keys; with ``--no-lanes`` the outbox is one FIFO and the
    pings' replies wait behind it.
    """
    flags = ["--outbound-rate", "32KiB/s", *([] if lanes else ["--no-lanes"])]
    with gateway(flags, transport=transport) as gw:
        limited, publisher = await connect(gw, "limited"), await connect(gw, "publisher")
        await _joined([limited, publisher], "flood")

        def flood(index: int) -> None:
            if index % 2:
                _publish(publisher, "flood", PAD, lane="telemetry", policy="droppable")
            else:
                _publish(publisher, "flood", PAD, lane="events", policy="coalescible",
                         key=f"k{index // 2 % KEYS}")

        stop = asyncio.Event()
        load = [asyncio.create_task(paced(1 / FLOOD_RATE, stop, flood)),
                asyncio.create_task(paced(PING_EVERY, stop, lambda _: limited.ping()))]
        await asyncio.sleep(warmup)
        before = await asyncio.to_thread(fetch_lanes, gw.url)
        limited.start_window()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        limited.recording = False
        elapsed = time.perf_counter() - started
        waits = [*limited.window.rtts, *limited.unanswered(since=started)]
        after = await asyncio.to_thread(fetch_lanes, gw.url)
        stop.set()
        await asyncio.gather(*load)
        window, got = lanes_between(before, after), limited.window
    return Shaping(
        lanes=lanes, received_bps=got.bytes / elapsed,
        offered_bps=got.message_bytes / max(got.messages, 1) * FLOOD_RATE,
        ping_p50_ms=percentile_ms(waits, 50), ping_p99_ms=percentile_ms(waits, 99),
        unanswered=len(limited.unanswered(since=started)),
        dropped_telemetry=window[Lane.TELEMETRY].dropped,
        coalesced_events=window[Lane.EVENTS].coalesced,
        elsewhere=sum(c.dropped + c.coalesced for _, c in window.items())
        - window[Lane.TELEMETRY].dropped - window[Lane.EVENTS].coalesced,
        closed=limited.close_code or 0)


@dataclass
class SlowConsumer:
    stops: bool
    others_p50_ms: float  # delivery latency (publish to receipt) of the members that read
    others_p99_ms: float
    rss_growth_mib: float  # the gateway's peak VmRSS over the window, over its start
    offered_mib: float  # sent to the slow client from its stop to its close
    behind_s: float  # from the stop until the outboxes held more than the pressure mark
    closed_after_behind_s: float  # from then until the gateway counted a 4008 (socket gone)
    closed_4008: int  # 4008 closes the gateway counted in the run


async def slow_consumer(*, stops: bool, warmup: float, transport: str) -> SlowConsumer:
    """:data:`READERS` members and one more in a room getting 300 KiB/s of reliable
    messages; with ``stops``, that one stops reading as the :data:`SLOW_WINDOW` opens.

    Its bytes first fill the kernel's buffers (the gateway's socket takes up to about
    4 MiB on loopback before it pushes back), then its outbox, over the pressure mark
    (``behind``), until the grace runs out; the readers' latencies cover all of it.
    """
    with gateway(SLOW_FLAGS, transport=transport) as gw:
        readers = [await connect(gw, f"reader-{i}") for i in range(READERS)]
        slow = await connect(gw, "slow", receive_buffer=SLOW_BUFFER)
        publisher = await connect(gw, "publisher")
        await _joined([*readers, slow, publisher], "crowd")
        stop = asyncio.Event()
        load = asyncio.create_task(paced(1 / SLOW_RATE, stop,
                                         lambda _: _publish(publisher, "crowd", SLOW_PAD)))
        await asyncio.sleep(warmup)
        closes = (await asyncio.to_thread(scrape, gw.metrics_url)).get((CLOSED, "4008"), 0)
        for reader in readers:
            reader.start_window()
        started, start_rss = time.perf_counter(), rss_bytes(gw.pid)
        peak, behind_at, closed_at = start_rss, None, None
        if stops:
            slow.pause_reading()
        while (now := time.perf_counter()) < started + SLOW_WINDOW or (
                stops and closed_at is None and now < started + CLOSE_WAIT):
            if now >= started + SLOW_WINDOW:
                for reader in readers:
                    reader.recording = False
            await asyncio.sleep(POLL)  # the sampling period
            sample = await asyncio.to_thread(scrape, gw.metrics_url)
            peak, now = max(peak, rss_bytes(gw.pid)), time.perf_counter()
            queued = sum(v for (name, _), v in sample.items()
                         if name == "rtctl_outbox_queued_bytes")
            if behind_at is None and queued > SLOW_MARK:
                behind_at = now
            if closed_at is None and sample.get((CLOSED, "4008"), 0) > closes:
                closed_at = now
        for reader in readers:
            reader.recording = False
        stop.set()
        await load
        closed = sample.get((CLOSED, "4008"), 0) - closes
        latencies = [x for reader in readers for x in reader.window.latencies]
    nan = float("nan")  # what did not happen (the median leaves it out)
    return SlowConsumer(
        stops=stops, others_p50_ms=percentile_ms(latencies, 50),
        others_p99_ms=percentile_ms(latencies, 99),
        rss_growth_mib=(peak - start_rss) / 2**20,
        offered_mib=nan if closed_at is None else
        (closed_at - started) * SLOW_RATE * len(SLOW_PAD) / 2**20,
        behind_s=nan if behind_at is None else behind_at - started,
        closed_after_behind_s=nan if closed_at is None or behind_at is None
        else closed_at - behind_at,
        closed_4008=int(closed))


@dataclass
class Fanout:
    window: str | None  # the gateway's --batch-window (None: no batching)
    cpu_us_per_delivery: float  # the gateway's user+system CPU over the window
    delivered_share: float  # deliveries over what was published × members
    messages_per_frame: float
    deliveries_per_s: float


async def fanout(*, window_flag: str | None, members: int, seconds: float, warmup: float,
                 transport: str) -> Fanout:
    """``members`` light members in one room; a publisher sends :data:`PER_TICK` messages
    together every :data:`TICK` s (a game's tick); ``--batch-window window_flag`` or none."""
    flags = [] if window_flag is None else ["--batch-window", window_flag]
    with gateway(flags, transport=transport, connections=members + 1) as gw:
        crowd: list[Member] = []
        for start in range(0, members, CONNECT_BATCH):
            crowd += await asyncio.gather(*(
                connect(gw, f"m{i}", parse=False)
                for i in range(start, min(start + CONNECT_BATCH, members))))
        publisher = await connect(gw, "publisher", parse=False)
        await _joined([*crowd, publisher], "fan")
        await quiet(crowd, for_s=QUIET, timeout=30)
        stop = asyncio.Event()

        def tick(_: int) -> None:
            for _ in range(PER_TICK):
                _publish(publisher, "fan", "x" * 48)

        load = asyncio.create_task(paced(TICK, stop, tick))
        await asyncio.sleep(warmup)
        for member in crowd:
            member.start_window()
        cpu, started = process_cpu_seconds(gw.pid), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = process_cpu_seconds(gw.pid) - cpu
        for member in crowd:
            member.recording = False
        elapsed = time.perf_counter() - started
        stop.set()
        await load
    delivered = sum(m.window.messages for m in crowd)
    frames = sum(m.window.frames for m in crowd)
    return Fanout(window=window_flag, cpu_us_per_delivery=1e6 * cpu / max(delivered, 1),
                  delivered_share=delivered / (PER_TICK / TICK * elapsed * members),
                  messages_per_frame=delivered / max(frames, 1),
                  deliveries_per_s=delivered / elapsed)


@dataclass
class Inbound:
    flooder: bool
    calm_p50_ms: float  # sys.ping RTT of the clients calling under the rate, pooled
    calm_p99_ms: float
    calm_errors: int
    flood_ok_per_s: float
    flood_limited: int  # -32029 answers the flooder got
    flood_told_when: int  # of those, how many carried an int data.retry_after_ms ≥ 1
    flood_other_errors: int
    closed: int  # connections the gateway closed during the run


def _told_when(error: dict[str, Any]) -> bool:
    retry = (error.get("data") or {}).get("retry_after_ms")
    return isinstance(retry, int) and retry >= 1


async def inbound(*, flooder: bool, seconds: float, warmup: float, transport: str) -> Inbound:
    """``--inbound-rate 50/s``: :data:`CALM` clients call ``sys.ping`` 20 times a second
    each (several, so that their p99 rests on enough calls), and with ``flooder`` one more
    calls it 200 times a second."""
    with gateway(["--inbound-rate", "50/s"], transport=transport) as gw:
        calm = [await connect(gw, f"calm-{i}") for i in range(CALM)]
        flood = await connect(gw, "flooder") if flooder else None
        stop = asyncio.Event()
        paces = [(client, CALM_EVERY) for client in calm] + (
            [(flood, FLOOD_EVERY)] if flood else [])
        load = [asyncio.create_task(paced(every, stop, _pinger(client)))
                for client, every in paces]
        await asyncio.sleep(warmup)
        for client, _ in paces:
            client.start_window()
        await asyncio.sleep(seconds)
        for client, _ in paces:
            client.recording = False
        stop.set()
        await asyncio.gather(*load)
        closed = await asyncio.to_thread(_closes, gw)
    got = flood.window if flood else None
    limited = [e for e in got.errors if e.get("code") == ErrorCode.RATE_LIMITED] if got else []
    rtts = [rtt for client in calm for rtt in client.window.rtts]
    return Inbound(
        flooder=flooder, calm_p50_ms=percentile_ms(rtts, 50), calm_p99_ms=percentile_ms(rtts, 99),
        calm_errors=sum(len(client.window.errors) for client in calm),
        flood_ok_per_s=len(got.rtts) / seconds if got else 0.0,
        flood_limited=len(limited), flood_told_when=sum(map(_told_when, limited)),
        flood_other_errors=len(got.errors) - len(limited) if got else 0,
        closed=closed + sum(bool(client.close_code) for client, _ in paces))


def _pinger(client: Member) -> Callable[[int], None]:
    return lambda _: client.ping()


def _closes(gw: Gateway) -> int:
    return int(sum(v for (name, _), v in scrape(gw.metrics_url).items() if name == CLOSED))
