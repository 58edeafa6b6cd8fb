"""The summary and the files say what was measured: units, refusals, and nothing as nothing."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from rtctl.bench.histogram import Histogram
from rtctl.bench.recovery_counts import MessageCounts, RecoveryTotals
from rtctl.bench.report import nothing_completed, refusals, summary, write_csv, write_json
from rtctl.bench.results import BenchResult
from rtctl.bench.state_counts import RoomCost, StateTotals, SyncCounts


def _result(scenario: str = "echo", latencies: tuple[int, ...] = (), connects: int = 0,
            **errors: int) -> BenchResult:
    histogram = Histogram()
    histogram.record_all(list(latencies))
    empty = Histogram()
    return BenchResult(scenario=scenario, clients=4, workers=1, mode="closed", rate=None,
                       duration_s=2.0, histogram=histogram, timeline=[histogram, empty],
                       errors=Counter({k.replace("_", " "): v for k, v in errors.items()}),
                       expected=len(latencies), connects=connects)


def _text(result: BenchResult) -> str:
    console = Console(record=True, width=400)
    console.print(summary(result))
    return console.export_text()


@pytest.mark.parametrize(("scenario", "unit"), [
    ("echo", "calls/s"), ("fanout", "deliveries/s"), ("rooms", "deliveries/s"),
    ("presence-churn", "sessions/s"), ("reconnect-storm", "recoveries/s"),
    ("state", "versions/s"),
])
def test_throughput_is_named_in_the_scenarios_unit(tmp_path: Path, scenario: str,
                                                   unit: str) -> None:
    result = _result(scenario, latencies=(1_000_000,) * 10)
    assert f"5 {unit} throughput" in _text(result)  # 10 in 2 s
    write_json(result, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["throughput_unit"] == unit


def test_percentiles_of_nothing_are_none_blank_and_a_dash(tmp_path: Path) -> None:
    result = _result(connects=4, connect=4)
    assert set(result.latency_ms().values()) == {None}
    write_json(result, tmp_path / "r.json")
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["timeline"][0] == {"second": 0, "messages": 0, "p50_ms": None,
                                       "p99_ms": None}
    write_csv(result, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[1:] == ["0,0,,,,", "1,0,,,,"]
    text = _text(result)
    assert "0.000" not in text.replace("100.000%", "")
    assert "nothing completed" in text
    assert "bottleneck" not in text  # a verdict over an idle generator would mislead


def test_an_empty_second_of_a_run_that_measured_is_blank_too(tmp_path: Path) -> None:
    result = _result(latencies=(2_000_000,) * 4)
    write_csv(result, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[1:] == [
        "0,4,2.000,2.000,2.000,2.000", "1,0,,,,"]


@pytest.mark.parametrize(("errors", "said"), [
    ({"http_429": 993}, "993 of 1,001 connections failed: 993 http 429 (too many connections "
                        "for one user: use --jwt-secret to give each client its own user)"),
    ({"connect": 2, "http_503": 1, "timeout": 5},
     "3 of 1,001 connections failed: 2 connect (nothing accepted the connection: is a server "
     "running at that URL?); 1 http 503 (the server is at its connection limit "
     "(--max-connections) or draining)"),
    ({"http_404": 1}, "1 of 1,001 connections failed: 1 http 404 (the server refused the "
                      "WebSocket upgrade (is the URL's path right?))"),
    ({"timeout": 5, "rpc_-32601": 1}, None),
])
def test_refusals_say_how_many_connections_failed_and_why(errors: dict[str, int],
                                                          said: str | None) -> None:
    assert refusals(_result(latencies=(1,), connects=1001, **errors)) == said


@pytest.mark.parametrize(("latencies", "errors", "said"), [
    ((1,), {"http_429": 3}, None),
    ((), {"http_401": 4},
     "nothing completed: 4 of 4 connections failed: 4 http 401 (the token was refused: give "
     "--token, or --jwt-secret with the server's secret)"),
    ((), {"timeout": 7, "rpc_-32601": 2},
     "nothing completed: every attempt failed (2 rpc -32601, 7 timeout)"),
    ((), {}, "nothing completed: no attempt fell in the measured window (try a longer "
             "--duration or a higher --rate)"),
])
def test_nothing_completed_is_one_sentence_with_its_cause(
        latencies: tuple[int, ...], errors: dict[str, int], said: str | None) -> None:
    assert nothing_completed(_result(latencies=latencies, connects=4, **errors)) == said


def test_the_summary_explains_refusals_of_a_run_that_measured() -> None:
    text = _text(_result(latencies=(1_000_000,) * 8, connects=10, http_429=2))
    assert "2 of 10 connections failed: 2 http 429 (too many connections for one user" in text


def _state(server: RoomCost | None, early: int = 0) -> StateTotals:
    state = StateTotals(room="drift:bench", entities=100, movers=10, tick_rate=20.0,
                        server=server, early=early)
    state.add("binary", SyncCounts(clients=2, versions=40, messages=41, bytes=3_800,
                                   patches=38, patch_bytes=3_420, snapshots=1, resyncs=1,
                                   gaps=1, dropped=1, wire_messages=41, wire_bytes=4_333))
    state.add("json", SyncCounts(clients=1, versions=20, messages=20, bytes=8_000, patches=20,
                                 patch_bytes=8_000, wire_messages=20, wire_bytes=9_000))
    return state


def test_the_state_scenario_shows_bytes_per_tick_per_encoding_and_the_rooms_cost(
        tmp_path: Path) -> None:
    cost = RoomCost(ticks=20, versions=20, patches=20, bytes_per_patch=90.0,
                    encode_us_per_patch=210.5, coalesced=0, catch_ups=2, fulls=1, members=3)
    result = replace(_result("state", latencies=(1_000_000,) * 60), rate=20.0,
                     state=_state(cost))
    lines = [" ".join(line.split()) for line in _text(result).splitlines()]
    assert "┃ per client ┃ binary ┃ json ┃" in lines
    assert "│ bytes per tick │ 95.0 │ 400.0 │" in lines  # 3,800 bytes over 40 versions
    assert "│ wire bytes per tick │ 108.3 │ 450.0 │" in lines
    assert "│ bytes per patch │ 90.0 │ 400.0 │" in lines
    assert "│ gaps / resyncs │ 1 / 1 │ 0 / 0 │" in lines
    said = _said(_text(result))
    assert "state: 4 clients, one room ticking 20 times a second" in said
    assert ("room drift:bench: 100 entities, 10 moving, 20 ticks/s; over the window 20 ticks, "
            "20 patches of 90.0 bytes, encoded in 210.5 µs each") in said
    assert "applied before the server stamped" not in said
    write_json(result, tmp_path / "r.json")
    document = json.loads((tmp_path / "r.json").read_text())["state"]
    assert document["server"]["encode_us_per_patch"] == 210.5
    assert document["clients"]["binary"]["bytes_per_tick"] == 95.0
    assert document["clients"]["json"]["wire_bytes_per_tick"] == 450.0


def test_the_state_scenario_says_what_it_could_not_measure() -> None:
    result = replace(_result("state", latencies=(1,)), rate=20.0,
                     state=_state(None, early=3))
    said = _said(_text(result))
    assert "its own counts (state.info) did not come" in said
    assert "3 versions were applied before the server stamped them" in said


def _said(text: str) -> str:
    return " ".join(text.split())


def test_the_storm_shows_outcomes_replays_and_messages(tmp_path: Path) -> None:
    recovery = RecoveryTotals(rooms=2, members=6, publish_rate=20.0, recovered=7,
                              failed=0, resumed=7, published=40,
                              messages=MessageCounts(expected=80, delivered=79, lost=1))
    recovery.resets["too_old"] = 1
    recovery.not_resumed["expired"] = 1
    recovery.replayed.record_all([1, 2, 3, 4, 5, 6, 9])
    result = replace(_result("reconnect-storm", latencies=(80_000_000,) * 7), rate=0.5,
                     recovery=recovery, errors=Counter({"reset too_old": 1}))
    said = _said(_text(result))
    assert "reconnect-storm: 4 clients, 0.5 storms/s, 2 rooms publishing 20 messages/s" in said
    assert "time to recover (ms)" in said
    assert "attempts / recovered │ 8 / 7 (87.50%)" in said
    assert "resets (reason) │ 1 too_old" in said
    assert "sessions resumed │ 7 (not resumed: 1 expired)" in said
    assert "replayed: sum, p50 / p99 / max per recovery │ 30, 4 / 9 / 9" in said
    assert "lost / duplicated / reordered │ 1 / 0 / 0" in said
    assert "1 messages lost, 0 duplicated and 0 out of order without a reset saying so" in said
    write_json(result, tmp_path / "r.json")
    document = json.loads((tmp_path / "r.json").read_text())["recovery"]
    assert (document["attempts"], document["success_rate"]) == (8, 7 / 8)
    assert document["replayed"] == {"sum": 30, "p50": 4, "p99": 9, "max": 9}
    assert document["sessions"] == {"resumed": 7, "not_resumed": {"expired": 1}}
    assert document["messages"]["lost"] == 1


def test_a_clean_storm_warns_of_nothing() -> None:
    recovery = RecoveryTotals(recovered=2, messages=MessageCounts(expected=8, delivered=8))
    result = replace(_result("reconnect-storm", latencies=(1,) * 2), recovery=recovery)
    said = _said(_text(result))
    assert "each client dropped again once recovered" in said
    assert "without a reset saying so" not in said
    assert "storms come faster" not in said
    assert "had not come by the end" not in said
    assert "sent twice by the gateway (the SDK" not in said


def test_late_messages_and_ones_sent_twice_are_warned_of(tmp_path: Path) -> None:
    recovery = RecoveryTotals(recovered=1, unfinished=1, resent=3,
                              messages=MessageCounts(expected=100, delivered=5, late=95))
    result = replace(_result("reconnect-storm", latencies=(1,)), recovery=recovery)
    said = _said(_text(result))
    assert "attempts / recovered │ 2 / 1 (50.00%)" in said  # the unfinished one did not
    assert "unfinished after the drain │ 1" in said
    assert ("95 messages had not come by the end: a stream that stopped, or a --drain too "
            "short to tell") in said
    assert "sent twice by the gateway (dropped by the SDK) │ 3" in said
    assert "3 messages were sent twice by the gateway" in said
    write_json(result, tmp_path / "r.json")
    document = json.loads((tmp_path / "r.json").read_text())["recovery"]
    assert (document["unfinished"], document["resent"]) == (1, 3)


def test_storms_faster_than_recoveries_are_said_so() -> None:
    recovery = RecoveryTotals(recovered=2, overlapped=90)
    result = replace(_result("reconnect-storm", latencies=(1,) * 2), recovery=recovery)
    assert ("90 cuts found their client still recovering from the one before: storms come "
            "faster than recoveries end (try a lower --rate)") in _said(_text(result))
