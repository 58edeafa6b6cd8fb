"""The families of ``/metrics``: start-up values, bounded labels, read at scrape time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from rtctl import __version__
from rtctl.config import Routing
from rtctl.gateway.metrics import GatewayMetrics
from rtctl.gateway.server import Gateway
from rtctl.histograms import BucketCounts
from rtctl.host import Host
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.protocol.lanes import Lane
from rtctl.router import Peer, Router
from rtctl.services import BUILTIN_SERVICES
from tests.conftest import TIMING, GatewayFactory, client, gateway_config, make_token, rpc
from tests.gateway.raw import RawClient, upgrade_request


def test_empty_histogram_has_no_quantile() -> None:
    histogram = BucketCounts((0.001, 0.01))
    assert histogram.count == 0
    assert histogram.quantile(0.5) is None


@pytest.mark.parametrize(
    ("q", "bound"),
    [(0.0, 0.001), (0.25, 0.001), (0.5, 0.001), (0.51, 0.01), (0.75, 0.01), (0.76, float("inf")),
     (1.0, float("inf"))],
)
def test_quantile_is_the_bucket_bound(q: float, bound: float) -> None:
    histogram = BucketCounts((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.005, 3.0):  # 0.001 sits in its own bucket (le=)
        histogram.observe(seconds)
    assert histogram.count == 4
    assert histogram.quantile(q) == bound


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(metrics: GatewayMetrics) -> Samples:
    """Every rtctl sample of a scrape, by name and labels, as a Prometheus server would read
    it (``process_*`` move between scrapes on their own)."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for sample in family.samples if not sample.name.startswith("process_")}


def _family(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def _counted(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The family's samples that are not 0: what happened, without the series kept ready."""
    return {labels: value for labels, value in _family(samples, name).items() if value}


LANE_SAMPLES = ("rtctl_outbox_queued_messages", "rtctl_outbox_queued_bytes",
                "rtctl_outbox_sent_total", "rtctl_outbox_sent_bytes_total",
                "rtctl_outbox_coalesced_total", "rtctl_outbox_dropped_total",
                "rtctl_outbox_wait_seconds_count")


def test_every_lane_and_kind_reads_zero_from_the_start() -> None:
    samples = _samples(GatewayMetrics(set(), lambda: 0))
    for name in LANE_SAMPLES:
        assert {labels: value for (n, labels), value in samples.items() if n == name} == {
            (("lane", lane),): 0.0 for lane in ("control", "state", "events", "chat",
                                                "telemetry")}, name
    assert {labels: value for (n, labels), value in samples.items()
            if n == "rtctl_inbound_limited_total"} == {
        (("kind", "call"),): 0.0, (("kind", "notification"),): 0.0}


def test_lane_counters_are_read_at_scrape_time() -> None:
    metrics = GatewayMetrics(set(), lambda: 0)
    before = _samples(metrics)
    chat, telemetry = metrics.lanes[Lane.CHAT], metrics.lanes[Lane.TELEMETRY]
    chat.depth, chat.depth_bytes, chat.coalesced = 2, 300, 4
    chat.wait.observe(0.003)
    chat.wait.observe(0.2)
    telemetry.sent, telemetry.sent_bytes, telemetry.dropped = 5, 640, 9
    metrics.inbound_limited["notification"] += 3
    changed = {key: value for key, value in _samples(metrics).items() if before[key] != value}
    assert changed == {
        ("rtctl_outbox_queued_messages", (("lane", "chat"),)): 2.0,
        ("rtctl_outbox_queued_bytes", (("lane", "chat"),)): 300.0,
        ("rtctl_outbox_coalesced_total", (("lane", "chat"),)): 4.0,
        ("rtctl_outbox_sent_total", (("lane", "telemetry"),)): 5.0,
        ("rtctl_outbox_sent_bytes_total", (("lane", "telemetry"),)): 640.0,
        ("rtctl_outbox_dropped_total", (("lane", "telemetry"),)): 9.0,
        ("rtctl_inbound_limited_total", (("kind", "notification"),)): 3.0,
        # 0.003 s is counted from le=0.005 up, 0.2 s from le=0.25 up
        **{("rtctl_outbox_wait_seconds_bucket", (("lane", "chat"), ("le", le))): 1.0
           for le in ("0.005", "0.01", "0.025", "0.05", "0.1")},
        **{("rtctl_outbox_wait_seconds_bucket", (("lane", "chat"), ("le", le))): 2.0
           for le in ("0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")},
        ("rtctl_outbox_wait_seconds_count", (("lane", "chat"),)): 2.0,
        ("rtctl_outbox_wait_seconds_sum", (("lane", "chat"),)): pytest.approx(0.203),
    }


def test_new_families_are_there_from_start_up() -> None:
    metrics = GatewayMetrics(set(), lambda: 0, transport="picows", node="n-1")
    scrape = metrics.render().decode()
    samples = _samples(metrics)
    assert _family(samples, "rtctl_upgrades_total") == {
        (("outcome", outcome),): 0.0 for outcome in ("ok", "401", "429", "503")}
    assert _family(samples, "rtctl_session_resumes_total") == {
        (("result", result),): 0.0 for result in ("resumed", "expired", "invalid", "wrong_user")}
    assert _family(samples, "rtctl_upgrades_refused_total") == {
        (("reason", reason),): 0.0 for reason in (
            "missing", "malformed", "expired", "not_yet_valid", "bad_signature", "bad_algorithm",
            "bad_audience", "bad_issuer", "bad_claims", "unknown_key", "too_many_connections",
            "too_many_connections_for_user", "draining", "forbidden", "bad_request")}
    assert _family(samples, "rtctl_rpc_errors_total") == {
        (("code", str(code.value)),): 0.0 for code in ErrorCode}
    assert _family(samples, "rtctl_build_info") == {
        (("node", "n-1"), ("transport", "picows"), ("version", __version__)): 1.0}
    assert _family(samples, "rtctl_ready") == {(): 0.0}
    assert _family(samples, "rtctl_draining") == {(): 0.0}
    assert _family(samples, "rtctl_event_loop_lag_seconds_count") == {(): 0.0}
    # <unknown> from the start: a wrong name's first call is a rise rate() sees
    assert _family(samples, "rtctl_rpc_calls_total") == {
        (("code", "ok"), ("method", "<unknown>")): 0.0,
        (("code", "-32601"), ("method", "<unknown>")): 0.0}
    assert "process_cpu_seconds_total" in scrape  # the ProcessCollector (Linux /proc)


def test_ready_and_draining_are_read_at_scrape_time() -> None:
    state = {"ready": True, "draining": False}
    metrics = GatewayMetrics(set(), lambda: 0, ready=lambda: state["ready"],
                             draining=lambda: state["draining"])
    assert _samples(metrics)[("rtctl_ready", ())] == 1.0
    state.update(ready=False, draining=True)
    samples = _samples(metrics)
    assert (samples[("rtctl_ready", ())], samples[("rtctl_draining", ())]) == (0.0, 1.0)


def test_calls_are_counted_by_known_method_and_code() -> None:
    metrics = GatewayMetrics({"room.join"}, lambda: 0)
    metrics.observe_call("room.join", 0.002, {"jsonrpc": "2.0", "id": 1, "result": {}})
    metrics.observe_call("room.join", 0.001, None)  # a notification
    metrics.observe_call("room.join", 0.0001, jsonrpc.encode_error(3, -32602, "Invalid params"))
    for name in ("bob.secret.1", "bob.secret.2"):
        metrics.observe_call(name, 0.0001, jsonrpc.encode_error(4, -32601, "Method not found"))
    metrics.count_limited("carol.secret")
    metrics.count_limited("room.join")
    samples = _samples(metrics)
    # the server's own failures (-32603, -32050) and -32602 read 0 for every method called
    # (not for <unknown>, which is only ever answered -32601 or -32029)
    assert _family(samples, "rtctl_rpc_calls_total") == {
        (("code", "ok"), ("method", "room.join")): 2.0,
        (("code", "-32602"), ("method", "room.join")): 1.0,
        (("code", "-32029"), ("method", "room.join")): 1.0,
        (("code", "-32603"), ("method", "room.join")): 0.0,
        (("code", "-32050"), ("method", "room.join")): 0.0,
        (("code", "ok"), ("method", "<unknown>")): 0.0,
        (("code", "-32601"), ("method", "<unknown>")): 2.0,
        (("code", "-32029"), ("method", "<unknown>")): 1.0}
    assert _family(samples, "rtctl_rpc_duration_seconds_count") == {
        (("method", "room.join"),): 3.0, (("method", "<unknown>"),): 2.0}


def test_a_method_added_after_the_metrics_counts_under_its_name() -> None:
    known: set[str] = set()
    metrics = GatewayMetrics(known, lambda: 0)
    known.add("game.move")  # a router's methods are read as names are first seen
    metrics.observe_call("game.move", 0.001, None)
    assert _counted(_samples(metrics), "rtctl_rpc_calls_total") == {
        (("code", "ok"), ("method", "game.move")): 1.0}


def test_close_codes_rtctl_does_not_define_are_one_other_series() -> None:
    metrics = GatewayMetrics(set(), lambda: 0)
    for code in (1000, 4321, 4322, 1000, 4008, 3000):
        metrics.connections_closed[code] += 1
    closed = _family(_samples(metrics), "rtctl_connections_closed_total")
    assert {labels: value for labels, value in closed.items() if value} == {
        (("code", "1000"),): 2.0, (("code", "4008"),): 1.0, (("code", "other"),): 3.0}
    # every code rtctl defines reads 0 from the start: an alert's rate() sees its first close
    assert set(closed) == {(("code", str(code.value)),) for code in CloseCode} | {
        (("code", "other"),)}


def test_a_failing_collector_is_left_out_not_the_scrape(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = GatewayMetrics(set(), lambda: 3)

    def broken() -> Iterator[Metric]:
        yield CounterMetricFamily("game_half", "Yielded before the bug", value=1)
        raise KeyError("game bug")

    def fine() -> Iterator[Metric]:
        yield CounterMetricFamily("game_moves", "Moves", value=7)

    metrics.add_collector(broken)
    metrics.add_collector(fine)
    samples = _samples(metrics)
    assert samples[("rtctl_connections", ())] == 3.0  # the scrape answered
    assert samples[("game_moves_total", ())] == 7.0
    assert ("game_half_total", ()) not in samples  # none of a failed collector's families
    assert samples[("rtctl_metrics_collector_errors_total", ())] == 1.0
    assert "game bug" in caplog.text


def test_collectors_are_read_at_every_scrape() -> None:
    metrics = GatewayMetrics(set(), lambda: 0)
    seen = [0]

    def collector() -> Iterator[Metric]:
        seen[0] += 1
        yield CounterMetricFamily("game_moves", "Moves", value=seen[0] * 10)

    metrics.add_collector(collector)
    assert _samples(metrics)[("game_moves_total", ())] == 10.0
    assert _samples(metrics)[("game_moves_total", ())] == 20.0


# -- on a live gateway ----------------------------------------------------------


async def test_upgrades_to_the_endpoint_are_counted_by_outcome(gateway: Gateway) -> None:
    async with client(gateway.url):
        pass
    for target, token in (("/ws", "not-a-jwt"), ("/elsewhere", make_token())):
        raw = await RawClient.connect(gateway.port)
        head = await raw.exchange(upgrade_request(target, tokens=(token,)))
        assert head.split(b" ")[1] in (b"401", b"404"), head
        raw.abort()
    # A request the gateway lets through but the WebSocket library refuses (a proxy that
    # drops the Upgrade header, say) opened nothing: it is no "ok".
    raw = await RawClient.connect(gateway.port)
    head = await raw.exchange(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              f"Authorization: Bearer {make_token()}\r\n\r\n".encode())
    assert not head.startswith(b"HTTP/1.1 101"), head
    raw.abort()
    assert _family(_samples(gateway.metrics), "rtctl_upgrades_total") == {
        (("outcome", "ok"),): 1.0, (("outcome", "401"),): 1.0, (("outcome", "429"),): 0.0,
        (("outcome", "503"),): 0.0}  # the 404 was no upgrade to the endpoint


async def test_a_call_over_the_rate_counts_as_minus_32029(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(routing=Routing(inbound_rate=0.001, inbound_burst=1))
    async with client(gateway.url) as ws:
        assert "result" in await rpc(ws, "sys.ping")
        assert (await rpc(ws, "sys.ping", id=2))["error"]["code"] == -32029
        assert (await rpc(ws, "no.such.method", id=3))["error"]["code"] == -32029
    assert _counted(_samples(gateway.metrics), "rtctl_rpc_calls_total") == {
        (("code", "ok"), ("method", "sys.ping")): 1.0,
        (("code", "-32029"), ("method", "sys.ping")): 1.0,
        (("code", "-32029"), ("method", "<unknown>")): 1.0}


async def test_client_chosen_close_codes_make_one_other_series(gateway: Gateway) -> None:
    closed = asyncio.Event()
    codes: list[int | None] = []

    def count(peer: Peer, code: int | None, reason: str) -> None:
        codes.append(code)
        if len(codes) == 2:
            closed.set()

    gateway.on_disconnect(count)
    for code in (4321, 4322):
        async with client(gateway.url) as ws:
            await ws.close(code)
    await asyncio.wait_for(closed.wait(), 5 * TIMING)
    assert _counted(_samples(gateway.metrics), "rtctl_connections_closed_total") == {
        (("code", "other"),): 2.0}


async def test_readiness_draining_and_the_lag_probe_follow_the_lifecycle() -> None:
    gateway = Gateway(gateway_config())
    assert _samples(gateway.metrics)[("rtctl_ready", ())] == 0.0  # starting
    await gateway.start()
    assert _samples(gateway.metrics)[("rtctl_ready", ())] == 1.0
    assert gateway._lag_probe.running
    async with client(gateway.url) as ws:
        stopping = asyncio.create_task(gateway.shutdown(drain=10 * TIMING))
        await asyncio.sleep(0)  # one loop turn: shutdown() marks the drain before it waits
        samples = _samples(gateway.metrics)
        assert (samples[("rtctl_ready", ())], samples[("rtctl_draining", ())]) == (0.0, 1.0)
        await ws.close()
    await asyncio.wait_for(stopping, 5 * TIMING)
    assert not gateway._lag_probe.running


def test_a_service_adds_its_families_before_start_up() -> None:
    def game(host: Host) -> Router:
        host.add_metrics(lambda: [CounterMetricFamily("game_matches", "Matches", value=0)])
        return Router()

    gateway = Gateway(gateway_config(), services=[*BUILTIN_SERVICES, game])
    samples = _samples(gateway.metrics)
    assert samples[("game_matches_total", ())] == 0.0
    info = _family(samples, "rtctl_build_info")
    assert info == {(("node", gateway.backends.node_id), ("transport", "websockets"),
                     ("version", __version__)): 1.0}
