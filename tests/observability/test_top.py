"""``rtctl top``'s model over hand-written expositions: rates, resets, quantiles, gaps."""

from __future__ import annotations

import dataclasses
import json

import pytest
from rich.console import Console

from rtctl.exceptions import ConfigError
from rtctl.histograms import BucketCounts
from rtctl.observability.top import (
    TOP_METHODS,
    LaneRow,
    MethodRow,
    NotMetrics,
    TopView,
    metrics_url,
    parse_scrape,
    top_view,
    view_json,
)
from rtctl.observability.top_render import top_table, with_failure


def _histogram(name: str, labels: str, buckets: dict[str, int], total: float) -> str:
    """A histogram's samples, cumulative as exposed; ``labels`` like ``method="a",``."""
    lines, running = [], 0
    for bound, count in buckets.items():
        running += count
        lines.append(f'{name}_bucket{{{labels}le="{bound}"}} {running}')
    lines += [f"{name}_count{{{labels.rstrip(',')}}} {running}",
              f"{name}_sum{{{labels.rstrip(',')}}} {total}"]
    return "\n".join(lines)


def _gateway(*, opened: int, closed_1000: int, closed_1006: int, ok: int, up_401: int,
             calls_ok: int, calls_err: int, echo: dict[str, int], join: dict[str, int],
             lag: dict[str, int], cpu: float, dropped: int, redis_ops: dict[str, int],
             redis_errors: int, messages_in: int = 1000, bytes_in: int = 50000) -> str:
    """One scrape of a gateway with every family of the design note, §1."""
    return "\n".join([
        "# TYPE rtctl_build_info gauge",
        'rtctl_build_info{node="n1",transport="picows",version="0.9"} 1',
        "# TYPE rtctl_ready gauge", "rtctl_ready 1",
        "# TYPE rtctl_draining gauge", "rtctl_draining 0",
        "# TYPE rtctl_connections gauge", "rtctl_connections 12",
        "# TYPE rtctl_connections_opened_total counter",
        f"rtctl_connections_opened_total {opened}",
        "# TYPE rtctl_connections_closed_total counter",
        f'rtctl_connections_closed_total{{code="1000"}} {closed_1000}',
        f'rtctl_connections_closed_total{{code="1006"}} {closed_1006}',
        "# TYPE rtctl_upgrades_total counter",
        f'rtctl_upgrades_total{{outcome="ok"}} {ok}',
        f'rtctl_upgrades_total{{outcome="401"}} {up_401}',
        "# TYPE rtctl_messages_received_total counter",
        f"rtctl_messages_received_total {messages_in}",
        "# TYPE rtctl_messages_sent_total counter", "rtctl_messages_sent_total 2000",
        "# TYPE rtctl_received_bytes_total counter", f"rtctl_received_bytes_total {bytes_in}",
        "# TYPE rtctl_sent_bytes_total counter", "rtctl_sent_bytes_total 90000",
        "# TYPE rtctl_rpc_calls_total counter",
        f'rtctl_rpc_calls_total{{method="sys.echo",code="ok"}} {calls_ok}',
        f'rtctl_rpc_calls_total{{method="room.join",code="-32602"}} {calls_err}',
        "# TYPE rtctl_rpc_duration_seconds histogram",
        _histogram("rtctl_rpc_duration_seconds", 'method="sys.echo",', echo, 0.5),
        _histogram("rtctl_rpc_duration_seconds", 'method="room.join",', join, 0.5),
        "# TYPE rtctl_event_loop_lag_seconds histogram",
        _histogram("rtctl_event_loop_lag_seconds", "", lag, 0.1),
        "# TYPE rtctl_outbox_queued_messages gauge",
        'rtctl_outbox_queued_messages{lane="events"} 7',
        "# TYPE rtctl_outbox_dropped_total counter",
        f'rtctl_outbox_dropped_total{{lane="events"}} {dropped}',
        "# TYPE rtctl_sessions gauge",
        'rtctl_sessions{state="connected"} 10', 'rtctl_sessions{state="held"} 2',
        "# TYPE rtctl_presence_online_users gauge", "rtctl_presence_online_users 9",
        "# TYPE rtctl_rooms gauge", "rtctl_rooms 3",
        "# TYPE rtctl_room_members gauge", "rtctl_room_members 11",
        "# TYPE rtctl_node_heartbeat_age_seconds gauge", "rtctl_node_heartbeat_age_seconds 1.5",
        "# TYPE rtctl_node_ttl_seconds gauge", "rtctl_node_ttl_seconds 15",
        "# TYPE rtctl_backend_up gauge",
        'rtctl_backend_up{backend="redis"} 1', 'rtctl_backend_up{backend="nats"} 0',
        "# TYPE rtctl_backend_operation_duration_seconds histogram",
        _histogram("rtctl_backend_operation_duration_seconds",
                   'backend="redis",operation="session.put",', redis_ops, 0.01),
        _histogram("rtctl_backend_operation_duration_seconds",
                   'backend="redis",operation="history.append",', redis_ops, 0.01),
        "# TYPE rtctl_backend_errors_total counter",
        f'rtctl_backend_errors_total{{backend="redis",operation="session.put"}} {redis_errors}',
        "# TYPE process_cpu_seconds_total counter", f"process_cpu_seconds_total {cpu}",
        "# TYPE process_resident_memory_bytes gauge", "process_resident_memory_bytes 8.0e7",
        "",
    ])


ZERO = {"0.001": 0, "0.01": 0, "0.1": 0, "+Inf": 0}
BEFORE = _gateway(opened=100, closed_1000=80, closed_1006=8, ok=100, up_401=4, calls_ok=500,
                  calls_err=10, echo=ZERO, join=ZERO, lag=ZERO, cpu=10.0, dropped=3,
                  redis_ops=ZERO, redis_errors=1)
# Two seconds later: 40 echo calls (all ≤ 1 ms), 20 joins (10 ≤ 10 ms, 10 ≤ 100 ms), …
AFTER = _gateway(opened=110, closed_1000=84, closed_1006=10, ok=110, up_401=8, calls_ok=540,
                 calls_err=30, echo={"0.001": 40, "0.01": 0, "0.1": 0, "+Inf": 0},
                 join={"0.001": 0, "0.01": 10, "0.1": 10, "+Inf": 0},
                 lag={"0.001": 99, "0.01": 0, "0.1": 0, "+Inf": 1}, cpu=10.5, dropped=9,
                 redis_ops={"0.001": 50, "0.01": 50, "0.1": 0, "+Inf": 0}, redis_errors=5,
                 messages_in=1100, bytes_in=52048)


def _view(before: str = BEFORE, after: str = AFTER, seconds: float = 2.0) -> TopView:
    return top_view(parse_scrape(before), parse_scrape(after), seconds)


@pytest.mark.parametrize(("pasted", "scraped"), [
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765/metrics"),
    ("http://127.0.0.1:8765/", "http://127.0.0.1:8765/metrics"),
    ("http://127.0.0.1:8765/metrics", "http://127.0.0.1:8765/metrics"),
    ("https://game.example/metrics", "https://game.example/metrics"),
    ("ws://127.0.0.1:8765/ws", "http://127.0.0.1:8765/metrics"),
    ("wss://game.example:443/ws", "https://game.example:443/metrics"),
    ("127.0.0.1:8767", "http://127.0.0.1:8767/metrics"),
])
def test_what_a_developer_pastes_becomes_the_metrics_url(pasted: str, scraped: str) -> None:
    assert metrics_url(pasted) == scraped


@pytest.mark.parametrize("pasted", ["ftp://127.0.0.1:8765", "http://"])
def test_a_url_that_names_no_gateway_is_bad_usage(pasted: str) -> None:
    with pytest.raises(ConfigError, match="is not a gateway's"):
        metrics_url(pasted)


@pytest.mark.parametrize("text", ["<html><body>Not found</body></html>", '{"status": "ok"}',
                                  "", "ok\n"])
def test_an_answer_that_is_not_an_exposition_is_said_so(text: str) -> None:
    with pytest.raises(NotMetrics):
        parse_scrape(text)


def _buckets(counts: list[int], bounds: tuple[float, ...] = (0.1, 0.2, 0.4)) -> BucketCounts:
    histogram = BucketCounts(bounds)
    histogram.counts = counts
    return histogram


@pytest.mark.parametrize(("q", "counts", "expected"), [
    (0.5, [10, 20, 0, 0], 0.1 + 0.1 * 5 / 20),  # rank 15: 5 into the (0.1, 0.2] bucket
    (0.05, [10, 20, 0, 0], 0.1 * 1.5 / 10),  # the first bucket starts at 0
    (1.0, [10, 20, 0, 0], 0.2),  # the top of the last bucket with counts
    (0.99, [0, 0, 10, 0], 0.2 + 0.2 * 9.9 / 10),
    (0.99, [10, 0, 0, 90], 0.4),  # in +Inf: the highest finite bound, as Prometheus says
])
def test_quantiles_interpolate_inside_the_bucket_as_histogram_quantile_does(
        q: float, counts: list[int], expected: float) -> None:
    assert _buckets(counts).interpolated(q) == pytest.approx(expected)


def test_an_empty_histogram_has_no_quantile() -> None:
    assert _buckets([0, 0, 0, 0]).interpolated(0.99) is None


def test_every_figure_comes_from_its_family_over_the_window() -> None:
    view = _view()
    assert view.build == {"node": "n1", "transport": "picows", "version": "0.9"}
    assert (view.ready, view.draining, view.connections) == (True, False, 12)
    assert view.opened_per_s == 5.0
    assert view.closes_per_s == {"1000": 2.0, "1006": 1.0}
    assert view.upgrades_per_s == {"401": 2.0, "ok": 5.0}
    assert (view.messages_in_per_s, view.messages_out_per_s) == (50.0, 0.0)
    assert (view.bytes_in_per_s, view.bytes_out_per_s) == (1024.0, 0.0)
    assert view.rpc_calls_per_s == (40 + 20) / 2
    assert view.rpc_error_ratio == pytest.approx(20 / 60)
    assert view.methods is not None
    assert view.lanes is not None
    assert view.backends is not None
    echo, join = view.methods
    assert (echo.method, echo.calls_per_s, join.method, join.calls_per_s) == (
        "sys.echo", 20.0, "room.join", 10.0)
    assert echo.p99_s == pytest.approx(0.001 * 39.6 / 40)
    assert join.p50_s == pytest.approx(0.01)  # rank 10: the top of (0.001, 0.01]
    assert view.event_loop_lag_p99_s == pytest.approx(0.001)  # rank 99 of 100
    events = next(lane for lane in view.lanes if lane.lane == "events")
    assert (events.depth, events.drops_per_s) == (7, 3.0)
    assert [(b.backend, b.up) for b in view.backends] == [("nats", False), ("redis", True)]
    redis = view.backends[1]
    assert redis.ops_per_s == 100.0  # two operations, 100 each, merged
    assert redis.errors_per_s == 2.0
    assert redis.p99_s == pytest.approx(0.001 + 0.009 * 98 / 100)
    assert view.sessions == {"connected": 10, "held": 2}
    assert (view.online_users, view.rooms, view.room_members) == (9, 3, 11)
    assert (view.heartbeat_age_s, view.node_ttl_s) == (1.5, 15)
    assert view.cpu_percent == pytest.approx(25.0)
    assert view.rss_bytes == 8e7


def test_a_restarted_gateway_never_shows_a_negative_rate() -> None:
    # The second scrape is from a fresh process: every counter restarted below its old value.
    restarted = _gateway(opened=3, closed_1000=1, closed_1006=0, ok=3, up_401=0, calls_ok=6,
                         calls_err=0, echo={"0.001": 6, "0.01": 0, "0.1": 0, "+Inf": 0},
                         join=ZERO, lag=ZERO, cpu=0.2, dropped=0, redis_ops=ZERO,
                         redis_errors=0)
    view = _view(AFTER, restarted)
    assert view.opened_per_s == 1.5  # counted from zero, as Prometheus' rate() does
    assert view.closes_per_s == {"1000": 0.5, "1006": 0.0}
    assert view.messages_in_per_s == 500.0  # 1100 before, 1000 since the restart
    assert (view.rpc_calls_per_s, view.rpc_error_ratio) == (3.0, 0.0)
    assert view.cpu_percent == pytest.approx(10.0)
    assert view.methods is not None
    echo = view.methods[0]  # the histogram restarted too: 6 calls, not 6 - 40
    assert (echo.method, echo.calls_per_s) == ("sys.echo", 3.0)
    assert echo.p99_s == pytest.approx(0.001 * 5.94 / 6)


@pytest.mark.parametrize("new_process", [
    pytest.param(('node="n1"', 'node="n2"'), id="another-node-id"),
    pytest.param(("# TYPE rtctl_build_info gauge",
                  "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 99\n"
                  "# TYPE rtctl_build_info gauge"), id="another-start-time")])
def test_a_restart_counts_from_zero_even_past_the_old_values(
        new_process: tuple[str, str]) -> None:
    # The new process already counted more than the old one had: no counter went down,
    # so only the process' identity tells (before: 1000 messages; after: 1100, all new).
    view = _view(BEFORE, AFTER.replace(*new_process))
    assert view.messages_in_per_s == 1100 / 2
    assert view.opened_per_s == 110 / 2


def test_a_series_that_appears_in_the_window_counts_from_zero() -> None:
    later = AFTER.replace('rtctl_upgrades_total{outcome="401"} 8',
                          'rtctl_upgrades_total{outcome="401"} 8\n'
                          'rtctl_upgrades_total{outcome="429"} 6')
    assert _view(after=later).upgrades_per_s == {"401": 2.0, "429": 3.0, "ok": 5.0}


OLD_GATEWAY = """# TYPE rtctl_connections gauge
rtctl_connections 2
# TYPE rtctl_connections_opened_total counter
rtctl_connections_opened_total 4
# TYPE rtctl_connections_closed_total counter
# TYPE rtctl_rpc_duration_seconds histogram
"""
SIMULATOR = """# TYPE rtctl_sim_messages_total counter
rtctl_sim_messages_total{direction="up"} 10
"""


def _shown(view: TopView, width: int = 100) -> str:
    console = Console(width=width, record=True)
    console.print(top_table(view, "http://127.0.0.1:8765/metrics"))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def test_families_a_scrape_lacks_are_none_and_show_as_a_dash() -> None:
    view = _view(OLD_GATEWAY, OLD_GATEWAY)
    assert (view.connections, view.opened_per_s, view.closes_per_s) == (2, 0.0, {})
    assert (view.upgrades_per_s, view.rpc_calls_per_s, view.rpc_error_ratio) == (None,) * 3
    assert (view.build, view.ready, view.sessions, view.cpu_percent) == (None,) * 4
    assert (view.lanes, view.backends) == (None, None)
    assert view.methods == []  # the family is there, with no calls yet
    shown = json.loads(json.dumps(view_json(view)))
    assert (shown["event_loop_lag_p99_s"], shown["lanes"], shown["backends"]) == (
        None, None, None)
    assert shown["methods"] == []
    text = _shown(view)
    assert "upgrades        —\n" in text
    assert "closes by code  none\n" in text  # the family is there, with no closes yet
    assert "rpc             —\n" in text
    assert "outbox lanes    —\n" in text
    assert "backends        —\n" in text
    assert "none" in text.splitlines()[-1]  # the methods' only row


def test_a_simulator_scrape_shows_only_dashes() -> None:
    view = _view(SIMULATOR, SIMULATOR)
    assert (view.methods, view.lanes, view.backends) == (None, None, None)
    text = _shown(view)
    assert "connections     — open  opened —\n" in text
    assert "—" in text.splitlines()[-1]


def test_the_terminal_view_shows_the_figures() -> None:
    text = _shown(_view())
    assert "n1 · 0.9 · picows  over 2.0s" in text
    assert "closes by code  1000 2.0/s  1006 1.0/s\n" in text
    assert "rpc             30.0/s  errors 33 %\n" in text
    assert "messages        in 50.0/s (1.0 KiB/s)  out 0.0/s (0 B/s)\n" in text
    assert "sys.echo       20.0/s  500 µs   990 µs\n" in text
    assert "backend nats    up no  ops —  errors —  p99 —\n" in text
    assert "backend redis   up yes  ops 100.0/s  errors 2.0/s  p99 9.82 ms\n" in text
    assert "outbox lanes    events 7 queued, 3.0/s dropped\n" in text
    assert "sessions        connected 10  held 2  users online 9\n" in text
    assert "cpu 25 %  rss 76.3 MiB" in text


def test_only_close_codes_and_outcomes_that_moved_are_shown() -> None:
    # A gateway zero-initialises every close code and upgrade outcome: at 0/s they say nothing.
    view = dataclasses.replace(_view(), closes_per_s={"1000": 0.0, "1006": 0.5, "4008": 0.0},
                               upgrades_per_s={"401": 0.0, "ok": 0.0})
    text = _shown(view)
    assert "closes by code  1006 0.5/s\n" in text
    assert "upgrades        none\n" in text


def test_only_lanes_with_messages_queued_or_dropped_are_shown() -> None:
    lanes = [LaneRow("control", 0, 0.0), LaneRow("state", 3, 0.0), LaneRow("chat", 0, 1.5)]
    assert "outbox lanes    state 3 queued  chat 0 queued, 1.5/s dropped\n" in _shown(
        dataclasses.replace(_view(), lanes=lanes))
    assert "outbox lanes    nothing queued or dropped\n" in _shown(
        dataclasses.replace(_view(), lanes=[LaneRow("control", 0, 0.0)]))


def test_a_gateway_with_no_calls_says_so_rather_than_a_dash() -> None:
    view = _view(AFTER, AFTER)  # the family is there; nothing was called in the window
    assert (view.rpc_calls_per_s, view.rpc_error_ratio) == (0.0, None)
    assert "rpc             0 calls\n" in _shown(view)


@pytest.mark.parametrize(("ratio", "shown"), [
    (1.0, "100 %"),
    (0.9996, "100 %"),  # ".2g" printed 1e+02 for any ratio from 0.995
    (0.005, "0.5 %"),
    (0.0994, "9.9 %"),
    (0.09951, "10 %"),  # not "10.0 %"
    (0.0004, "<0.1 %"),  # a few errors are not none
    (0.0, "0.0 %"),
])
def test_the_error_ratio_reads_without_an_exponent(ratio: float, shown: str) -> None:
    view = dataclasses.replace(_view(), rpc_error_ratio=ratio)
    assert f"errors {shown}\n" in _shown(view)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.0009996, "1 ms"),  # 999.6 µs rounds up into the next unit, not to 1e+03 µs
    (0.9994, "999 ms"),
    (0.9996, "1 s"),
    (1.0, "1 s"),
    (99.94, "99.9 s"),
    (1500.0, "1,500 s"),  # ".3g" printed 1.5e+03
    (7200.4, "7,200 s"),
])
def test_durations_read_without_an_exponent(seconds: float, shown: str) -> None:
    view = dataclasses.replace(_view(), event_loop_lag_p99_s=seconds, heartbeat_age_s=seconds)
    text = _shown(view)
    assert f"p99 {shown}\n" in text
    assert f"age {shown}  ttl 15 s" in text


# Every close code a gateway zero-initialises (design note §1): an idle node exposes them all.
IDLE_MEMORY_NODE = "\n".join(
    [line for line in BEFORE.splitlines() if "rtctl_backend" not in line]
    + [f'rtctl_connections_closed_total{{code="{code}"}} 0' for code in (
        "1001", "1002", "1003", "1005", "1007", "1009", "1011", "1013", "4001", "4003", "4008",
        "4009", "other")]) + "\n"


def _busy(backends: int) -> TopView:
    """A busy Redis node: every figure moving, TOP_METHODS methods, a lane shedding."""
    view = _view()
    methods = [MethodRow(f"inventory.method_{number:02}", 1234.5, 0.000181, 0.0247)
               for number in range(TOP_METHODS)]
    lanes = [LaneRow("state", 12, 0.0), LaneRow("events", 1234, 56.7), LaneRow("chat", 0, 0.0)]
    assert view.backends is not None
    return dataclasses.replace(
        view, methods=methods, lanes=lanes, backends=view.backends[-backends:],
        upgrades_per_s={"401": 12.3, "429": 4.5, "503": 0.1, "ok": 123.4},
        closes_per_s={"1000": 101.1, "1001": 20.2, "1006": 3.3, "4008": 0.4})


def _lines(shown: object) -> list[str]:
    console = Console(width=80, height=24, record=True)
    console.print(shown)
    return console.export_text().splitlines()


@pytest.mark.parametrize(("view", "most"), [
    (_view(IDLE_MEMORY_NODE, IDLE_MEMORY_NODE), 23),
    (_busy(backends=1), 23),  # a line to spare for a failed scrape's status line
    (_busy(backends=2), 24),
])
def test_the_view_fits_an_80_by_24_terminal(view: TopView, most: int) -> None:
    lines = _lines(top_table(view, "http://10.0.0.11:8765/metrics"))
    assert len(lines) <= most, "\n".join(lines)
    assert lines[-1].startswith("sys.echo" if len(view.methods or ()) == 2
                                else "inventory.method_09")


def test_a_failed_scrape_is_said_above_the_last_view() -> None:
    view = top_table(_busy(backends=1), "http://10.0.0.11:8765/metrics")
    lines = _lines(with_failure(view, "[Errno 111] Connection refused", "03:04:05"))
    assert lines[0].rstrip() == "scrape failed 03:04:05: [Errno 111] Connection refused; retrying"
    assert lines[1:] == _lines(view)
    assert len(lines) <= 24
