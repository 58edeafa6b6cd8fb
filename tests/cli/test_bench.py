"""``rtctl bench`` as a user runs it: an embedded gateway, exit codes, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import test_cli
from tests.cli.test_cli import Served, rtctl

env = test_cli.env  # the fixture: a fresh state directory, no token in the environment

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


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "p99<<5"], "threshold 'p99<<5' is not METRIC<VALUE"),
    (["--scenario", "nope"], "unknown scenario 'nope'"),
    (["--rate", "10", "--closed"], "--rate and --closed exclude each other"),
])
def test_bad_arguments_are_one_line(env: dict[str, str], args: list[str],
                                    message: str) -> None:
    done = rtctl("bench", *QUICK, *args, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr


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
