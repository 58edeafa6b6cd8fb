"""``rtctl bench`` as a user runs it: an embedded gateway, exit codes, files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import test_cli
from tests.cli.test_cli import Served, rtctl
from tests.conftest import SECRET, make_token

env = test_cli.env  # the fixtures: a fresh state directory, no token in the environment
served = test_cli.served  # `rtctl serve` with SECRET and the default per-user limit, 8

QUICK = ["--clients", "4", "--duration", "0.5s", "--warmup", "0.1s"]


def test_without_url_it_measures_an_embedded_gateway(tmp_path: Path,
                                                      env: dict[str, str]) -> None:
    out = tmp_path / "result.json"
    done = rtctl("bench", *QUICK, "--json", str(out), "--csv", str(tmp_path / "t.csv"),
                 "--plot", str(tmp_path / "p.png"), "--threshold", "errors<1%",
                 "--threshold", "p99<5s", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert {"scenario", "clients", "duration_s", "messages", "throughput_per_s",
            "latency_ms", "errors"} <= result.keys()
    assert set(result["latency_ms"]) >= {"p50", "p90", "p99", "p999", "max", "mean"}
    assert result["messages"] > 0
    assert result["errors"] == {}
    assert [t["passed"] for t in result["thresholds"]] == [True, True]
    assert (tmp_path / "t.csv").read_text().startswith("second,messages,")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "p99.99" in done.stdout


def test_a_failed_threshold_exits_1(env: dict[str, str]) -> None:
    done = rtctl("bench", *QUICK, "--threshold", "p50<1us", env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "rtctl: threshold failed: p50<1us"


def test_a_url_two_workers_and_the_simulator_in_between(env: dict[str, str]) -> None:
    served = Served(env=env)  # dev mode: bench mints tokens from the same dev secret
    try:
        done = rtctl("bench", served.base_url, "--scenario", "fanout", "--rate", "20",
                     "--workers", "2", "--through", "wifi", *QUICK,
                     env=env, timeout=60)
    finally:
        served.stop()
    assert done.returncode == 0, done.stderr
    assert "fanout: 4 clients, open loop at 20/s, 2 worker(s)" in done.stdout
    assert "deliveries/s throughput" in done.stdout  # not calls: 3 subscribers per publish


def _said(output: str) -> str:
    """The output as one line: rich wraps the summary at the terminal's width."""
    return " ".join(output.split())


def test_nothing_completed_is_said_plainly_and_fails(tmp_path: Path,
                                                     env: dict[str, str]) -> None:
    out = tmp_path / "result.json"
    done = rtctl("bench", "ws://127.0.0.1:1", "--clients", "3", "--duration", "0.2s",
                 "--warmup", "0s", "--json", str(out), env=env, timeout=60)
    assert done.returncode == 1
    assert "nothing completed: 3 of 3 connections failed: 3 connect" in _said(done.stdout)
    latency_row = next(line for line in done.stdout.splitlines() if "│" in line and
                       "p50" not in line)
    cells = [cell.strip() for cell in latency_row.split("│")[1:-1]]
    assert cells == ["—"] * 7  # the percentiles of nothing, not 0.000
    result = json.loads(out.read_text())
    assert set(result["latency_ms"].values()) == {None}
    assert (result["connections"], result["errors"]) == (3, {"connect": 3})


def test_one_token_is_one_user_and_the_summary_says_why_the_rest_were_refused(
        served: Served, env: dict[str, str]) -> None:
    window = ["--clients", "10", "--duration", "0.3s", "--warmup", "0s"]
    shared = rtctl("bench", served.base_url, *window, "--token", make_token("alice"),
                   env=env, timeout=60)
    assert shared.returncode == 0, shared.stderr  # 8 clients measured something
    assert ("2 of 10 connections failed: 2 http 429 (too many connections for one user: "
            "use --jwt-secret to give each client its own user)") in _said(shared.stdout)
    minted = rtctl("bench", served.base_url, *window, "--jwt-secret", SECRET, env=env,
                   timeout=60)
    assert minted.returncode == 0, minted.stderr
    assert "0 errors" in minted.stdout
    assert "connections failed" not in _said(minted.stdout)


def test_the_state_scenario_reports_bytes_per_tick_latency_and_the_rooms_cost(
        tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "result.json"
    done = rtctl("bench", "--scenario", "state", "--clients", "3", "--entities", "10",
                 "--duration", "1s", "--warmup", "0.2s", "--json", str(out), env=env,
                 timeout=60)
    assert done.returncode == 0, done.stderr
    assert "one room ticking 20 times a second" in _said(done.stdout)  # the default rate
    result = json.loads(out.read_text())
    assert (result["throughput_unit"], result["errors"]) == ("versions/s", {})
    assert result["latency_ms"]["p50"] is not None
    state = result["state"]
    assert (state["room"], state["entities"], state["tick_rate"]) == ("drift:bench", 10, 20.0)
    binary = state["clients"]["binary"]
    assert binary["clients"] == 3
    assert binary["bytes_per_tick"] > 0
    assert binary["wire_bytes_per_tick"] > binary["bytes_per_tick"]
    assert binary["gaps"] == binary["resyncs"] == 0
    server = state["server"]
    assert server["members"] == 3
    assert server["encode_us_per_patch"] > 0
    assert server["bytes_per_patch"] > 0


def test_the_state_scenario_names_the_room_type_a_gateway_lacks(
        served: Served, env: dict[str, str]) -> None:
    done = rtctl("bench", served.base_url, "--scenario", "state", "--clients", "2",
                 "--jwt-secret", SECRET, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "rtctl: error: the gateway has no 'drift' room type: start it with "
        "`rtctl serve --room-type drift`"]


def test_the_reconnect_storm_through_the_handover_profile_reports_its_recoveries(
        tmp_path: Path, env: dict[str, str]) -> None:
    # One room: a publisher and three subscribers, cut at 2 s and 4 s into the run (the
    # window's two storms, far enough apart for a loaded machine), their links through
    # `rtctl simulate --mode tcp`.
    out = tmp_path / "result.json"
    done = rtctl("bench", "--scenario", "reconnect-storm", "--clients", "4", "--rate", "0.5",
                 "--duration", "3.5s", "--warmup", "1s", "--through", "wifi-lte-handover",
                 "--json", str(out), "--threshold", "lost<1", "--threshold", "duplicated<1",
                 "--threshold", "errors<1%", env=env, timeout=90)
    assert done.returncode == 0, done.stderr
    said = _said(done.stdout)
    assert "0.5 storms/s, 1 rooms publishing 20 messages/s each" in said
    assert "recoveries/s throughput" in said
    result = json.loads(out.read_text())
    assert (result["throughput_unit"], result["errors"]) == ("recoveries/s", {})
    recovery = result["recovery"]
    assert recovery["attempts"] == recovery["recovered"] == result["messages"] == 2 * 3
    assert recovery["sessions"]["resumed"] == 6, recovery["sessions"]
    assert recovery["messages"]["lost"] == recovery["messages"]["duplicated"] == 0
    assert recovery["messages"]["delivered"] == recovery["messages"]["expected"] > 0
    assert [t["passed"] for t in result["thresholds"]] == [True, True, True]
