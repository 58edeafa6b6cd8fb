"""What counting costs a call, and what a scrape costs: this tree against an older one.

Each run starts one child process per tree, alternating, so both see the same machine:
the child builds a Gateway (not started: no sockets), then times, best of 5 repeats,

* ``receive``: ``Dispatcher.receive`` of a ``sys.ping`` request, reply encoded, the whole
  per-message path the metrics are bumped on;
* ``scrape``: rendering ``/metrics`` after 20 methods were called, and its size.

    .venv/bin/python benchmarks/metrics_cost.py --base de12cc6 --runs 5

The older tree comes from ``git archive`` into a temporary directory (nothing in the work
tree changes). Medians of the runs are printed; docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, timeit
from types import MappingProxyType
from rtctl.config import GatewayConfig
from rtctl.gateway.auth import AuthConfig, Identity
from rtctl.gateway.connection import Connection, ConnectionState
from rtctl.gateway.server import Gateway
from rtctl.router import Router

class Quiet:  # a transport that takes everything
    def send(self, data, binary=False, **tags): return True
    def close(self, code, reason): pass
    def queued(self): return None

router = Router()
for n in range(20):
    router.add_method(lambda n=n: n, name=f"game.m{n}")
gateway = Gateway(GatewayConfig(auth=AuthConfig(secret="x" * 40), port=0), router=router)
identity = Identity(user="alice", claims=MappingProxyType({"sub": "alice"}), expires_at=None)
conn = Connection(id="c-1", identity=identity, remote_address=None, local_address=None,
                  connected_at=1.0, subprotocol="rtctl.v1", transport=Quiet(),
                  state=ConnectionState.OPEN)
receive, ping = gateway.dispatcher.receive, '{"jsonrpc":"2.0","method":"sys.ping","id":1}'
for n in range(20):
    receive(conn, '{"jsonrpc":"2.0","method":"game.m%d","id":1}' % n)
calls = 50_000
per_call = min(timeit.repeat(lambda: receive(conn, ping), number=calls, repeat=5)) / calls
render = gateway.metrics.render
per_scrape = min(timeit.repeat(render, number=200, repeat=5)) / 200
print(json.dumps({"receive_us": per_call * 1e6, "scrape_ms": per_scrape * 1e3,
                  "scrape_bytes": len(render())}))
"""


def measure(tree: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=tree, env={"PYTHONPATH": str(tree)},
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="de12cc6",
                        help="the older revision (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {args.base: export(args.base, Path(scratch)), "HEAD": ROOT}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                runs[name].append(measure(tree))
    for name, results in runs.items():
        medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
        print(f"{name:>8}: receive {medians['receive_us']:.2f} µs per sys.ping, scrape "
              f"{medians['scrape_ms']:.2f} ms for {medians['scrape_bytes'] / 1024:.1f} KiB "
              f"(medians of {args.runs})")


if __name__ == "__main__":
    main()
