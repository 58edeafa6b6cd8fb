"""The arena's netcode across networks: the tables of docs/netcode.md, remade.

For each network, ``--runs`` runs of ``rtctl bench --scenario arena`` (10 bots, 2 s
warm-up, 10 s measured by default), then the medians over the runs of each figure
as the two Markdown tables of docs/netcode.md#measured:

* ``ws`` networks go through ``--through PROFILE``: the simulator drops whole
  messages (``none`` is loopback, no simulator);
* ``tcp:PROFILE`` networks put ``rtctl simulate --mode tcp --profile PROFILE``
  between an ``rtctl serve --room-type arena`` and the bench: a lost segment is a
  retransmission stall, as a WebSocket suffers it.

::

    .venv/bin/python benchmarks/arena_networks.py --runs 3 --out /tmp/arena-runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NETWORKS = ["none", "wifi", "mobile-4g", "broadband-regional-p50",
            "broadband-international-p50", "broadband-international-p95", "satellite-geo",
            "edge", "tcp:mobile-4g", "tcp:broadband-international-p50",
            "tcp:broadband-international-p95"]
RTCTL = [sys.executable, "-m", "rtctl"]
GATEWAY_PORT, SIMULATOR_PORT = 18765, 18766


@contextlib.contextmanager
def _server(command: list[str]) -> Iterator[None]:
    """A server process, ready once it prints its first line (its banner)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        assert process.stdout is not None
        if " listening on " not in process.stdout.readline():
            raise SystemExit(f"did not start: {' '.join(command)}")
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _bench(args: argparse.Namespace, network: str, out: Path) -> None:
    common = ["--scenario", "arena", "--clients", str(args.clients), "--duration",
              args.duration, "--warmup", args.warmup, "--json", str(out)]
    if not network.startswith("tcp:"):
        through = [] if network == "none" else ["--through", network]
        subprocess.run([*RTCTL, "bench", *common, *through], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return
    secret = secrets.token_urlsafe(32)
    gateway = [*RTCTL, "serve", "--host", "127.0.0.1", "--port", str(GATEWAY_PORT),
               "--jwt-secret", secret, "--room-type", "arena"]
    simulator = [*RTCTL, "simulate", "--mode", "tcp", "--control", "off", "--listen",
                 f"127.0.0.1:{SIMULATOR_PORT}", "--upstream",
                 f"ws://127.0.0.1:{GATEWAY_PORT}", "--profile", network.removeprefix("tcp:")]
    with _server(gateway), _server(simulator):
        subprocess.run([*RTCTL, "bench", f"ws://127.0.0.1:{SIMULATOR_PORT}", *common,
                        "--jwt-secret", secret], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _median(runs: list[dict[str, Any]], path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path.split("."):
            value = value[key]
        values.append(value)
    return statistics.median(values)


def _name(network: str) -> str:
    if network == "none":
        return "loopback (no simulator)"
    if network.startswith("tcp:"):
        return f"`{network.removeprefix('tcp:')}`, tcp mode"
    return f"`{network}`"


def tables(results: dict[str, list[dict[str, Any]]]) -> str:
    """The two tables of docs/netcode.md#measured, from each network's runs."""
    seen = ["| network | input delay p50 / p99, unpredicted | remote error p50 / p99, "
            "interpolated | … newest snapshot | frames extrapolated or frozen | "
            "interpolation delay p50 |", "|---|---|---|---|---|---|"]
    done = ["| network | snapshot age p50 / p99 | ticks not received as their own patch | "
            "prediction error p50 / p99 / max | corrections | respawns | rollback frames "
            "p50 / p99 / max | inputs never processed | bytes/s per client in / out |",
            "|---|---|---|---|---|---|---|---|---|"]
    for network, runs in results.items():
        def m(path: str, runs: list[dict[str, Any]] = runs) -> float:
            return _median(runs, "netcode." + path)
        seen.append(
            f"| {_name(network)} | {m('without.input_delay_ms.p50'):.0f} / "
            f"{m('without.input_delay_ms.p99'):.0f} ms | {m('interpolation_error.p50'):.1f} / "
            f"{m('interpolation_error.p99'):.0f} | {m('without.interpolation_error.p50'):.1f}"
            f" / {m('without.interpolation_error.p99'):.0f} | {m('extrapolated_ratio'):.1%} |"
            f" {m('interpolation_delay_ms.p50'):.0f} ms |")
        done.append(
            f"| {_name(network)} | {m('snapshot_age_ms.p50'):.0f} / "
            f"{m('snapshot_age_ms.p99'):.0f} ms | {_median(runs, 'error_ratio'):.1%} | "
            f"{m('prediction_error.p50'):.1f} / {m('prediction_error.p99'):.1f} / "
            f"{m('prediction_error.max'):.1f} | {m('corrections.count'):.0f} | "
            f"{m('respawns'):.0f} | {m('rollback_frames.p50'):.0f} / "
            f"{m('rollback_frames.p99'):.0f} / {m('rollback_frames.max'):.0f} | "
            f"{m('input_loss.ratio'):.2%} | {m('bytes_per_s.in'):,.0f} / "
            f"{m('bytes_per_s.out'):,.0f} |")
    return "\n".join(seen) + "\n\n" + "\n".join(done) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--warmup", default="2s")
    parser.add_argument("--out", type=Path, default=Path("arena-runs"),
                        help="Directory for each run's JSON.")
    parser.add_argument("--networks", nargs="*", default=NETWORKS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for run in range(1, args.runs + 1):  # round-robin: drifts in load hit every network
        for network in args.networks:
            _bench(args, network, args.out / f"{network.replace(':', '-')}-{run}.json")
            print(f"run {run}: {network}", file=sys.stderr)
    results = {network: [json.loads((args.out / f"{network.replace(':', '-')}-{run}.json")
                                    .read_text()) for run in range(1, args.runs + 1)]
               for network in args.networks}
    print(tables(results))


if __name__ == "__main__":
    main()
