"""Failover figures (issue 13): the time from a fault to every player recovered, nothing lost.

One cluster of real processes on loopback (``redis-server``, ``nats-server``, three
``rtctl serve --redis --nats`` and HAProxy with deploy/haproxy/haproxy.cfg), then the
failover drill of :mod:`rtctl.bench.failover` for each client count and fault, ``--runs``
times (the cluster is mended between runs). Each run prints one JSON line; each
(clients, fault) pair then prints a summary whose keys say what they are: ``*_median``
the median over its runs (the recovery times p50/p99/max, from the fault to each affected
player's room recovered or reset; the time HAProxy took to stop sending the node players;
players dropped, resumed, replayed messages, resets), ``*_total`` the sum over its runs
(acknowledged messages expected, lost, duplicated, reordered, skipped by a reset or still
missing at the end (late), publishes never acknowledged, offsets the gateway sent twice,
publishes refused), and ``timed_out_runs``. The exit status is 1 when any run went wrong:
a message count above 0, a wait that timed out, or, after a gateway was killed or
drained, a reset or a dropped player that did not resume its session.

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
COUNTS = ("lost", "duplicated", "reordered", "skipped", "late", "unacked", "resent")
GATEWAY_FAULTS = (Fault.KILL.value, Fault.DRAIN.value)  # every dropped player must resume


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
        **{f"recovery_{p}_ms_median": median(runs, "recovery_ms", p)
           for p in ("p50", "p99", "max")},
        **{f"{name}_median": median(runs, name)
           for name in ("taken_out_s", "dropped", "resumed", "replayed")},
        "resets_median": statistics.median(sum(run["resets"].values()) for run in runs),
        **{f"{count}_total": sum(run[count] for run in runs)
           for count in ("expected", *COUNTS, "refused")},
        "timed_out_runs": sum(run["timed_out"] is not None for run in runs),
    }


def wrong(run: dict[str, Any]) -> list[str]:
    """What went wrong in one run (its summary); empty if nothing did."""
    said = [f"{run[count]} {count}" for count in COUNTS if run[count]]
    if run["timed_out"] is not None:
        said.append(f"timed out waiting for {run['timed_out']}")
    if run["fault"] in GATEWAY_FAULTS:
        if run["resets"]:
            said.append(f"resets {run['resets']}")
        if run["resumed"] != run["dropped"]:
            said.append(f"{run['resumed']} of {run['dropped']} dropped players resumed")
    return said


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
    parser.add_argument("--json", type=Path, help="write every run and the summaries here")
    args = parser.parse_args()
    report: dict[str, Any] = {"runs": [], "summaries": []}
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
                    if said := wrong(runs[-1]):
                        print(f"{clients} clients, {fault.value}: {'; '.join(said)}",
                              file=sys.stderr, flush=True)
                report["runs"] += runs
                report["summaries"].append(summarise(clients, fault, runs))
                print(json.dumps(report["summaries"][-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(wrong(run) for run in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
