"""Failover figures (issue 13): the time from a fault to every player recovered, nothing lost.

One cluster of real processes on loopback (``redis-server``, ``nats-server``, three
``rtctl serve --redis --nats`` and HAProxy with deploy/haproxy/haproxy.cfg), then the
failover drill of :mod:`rtctl.bench.failover` for each client count and fault, ``--runs``
times (the cluster is mended between runs). Each run prints one JSON line; each
(clients, fault) pair then prints the medians over its runs of the recovery times
(p50/p99/max, from the fault to each affected player's room recovered or reset) and of
the time HAProxy took to stop sending the node players, and the totals over all runs of
acknowledged messages lost, duplicated, reordered, skipped by a reset or still missing
at the end (late), and of publishes never acknowledged.

    .venv/bin/python benchmarks/failover.py --runs 3 [--clients 300 1000] \
        [--faults kill drain redis] [--rate 5] [--drain 2s] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtctl.bench.cluster import start_cluster  # noqa: E402
from rtctl.bench.failover import DEFAULT_RATE, Drill, Fault, run_drill  # noqa: E402

CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
COUNTS = ("lost", "duplicated", "reordered", "skipped", "late", "unacked")


def median(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else None


def summarise(clients: int, fault: Fault, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "clients": clients, "fault": fault.value, "runs": len(runs),
        **{f"recovery_{p}_ms": median(runs, "recovery_ms", p) for p in ("p50", "p99", "max")},
        "taken_out_s": median(runs, "taken_out_s"),
        "dropped": median(runs, "dropped"), "replayed": median(runs, "replayed"),
        "resets": sum(sum(run["resets"].values()) for run in runs),
        "expected": sum(run["expected"] for run in runs),
        **{count: sum(run[count] for run in runs) for count in COUNTS},
        "timed_out": sum(run["timed_out"] is not None for run in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--faults", nargs="+", choices=[f.value for f in Fault],
                        default=[f.value for f in Fault])
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="messages a second from each room's publisher")
    parser.add_argument("--drain", default="2s", help="the gateways' --drain")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound of every wait, s")
    parser.add_argument("--json", type=Path, help="write every run and the medians here")
    args = parser.parse_args()
    report: dict[str, Any] = {"runs": [], "medians": []}
    with tempfile.TemporaryDirectory() as workdir, start_cluster(
            config=CONFIG, workdir=Path(workdir), gateway_flags=("--drain", args.drain),
    ) as cluster:
        for clients in args.clients:
            for fault in map(Fault, args.faults):
                runs = []
                for _ in range(args.runs):
                    cluster.restore()
                    drill = Drill(fault=fault, clients=clients, rate=args.rate,
                                  timeout=args.timeout)
                    runs.append(asyncio.run(run_drill(cluster, drill)).summary())
                    print(json.dumps(runs[-1]), flush=True)
                report["runs"] += runs
                report["medians"].append(summarise(clients, fault, runs))
                print(json.dumps(report["medians"][-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    clean = all(m[count] == 0 for m in report["medians"] for count in COUNTS)
    return 0 if clean and not any(m["timed_out"] for m in report["medians"]) else 1


if __name__ == "__main__":
    sys.exit(main())
