"""How long a command takes to start: this tree against an older one, side by side.

Each round runs every command once per tree, alternating, so both see the same machine;
the older tree comes from ``git archive`` (metrics_cost.export) and both run on the same
virtualenv with ``PYTHONPATH`` pointing at the tree. Medians of the rounds are printed;
docs/performance.md quotes them.

    .venv/bin/python benchmarks/cli_startup.py --base 9635fbb --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_cost import ROOT, export

COMMANDS = (["token", "--sub", "a"], ["call", "--help"], ["--help"])


def once(tree: Path, command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rtctl", *command], cwd=tree, check=True,
                   env={**os.environ, "PYTHONPATH": str(tree)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="9635fbb",
                        help="the older revision (default %(default)s: commands loaded eagerly)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {args.base: export(args.base, Path(scratch)), "HEAD": ROOT}
        for tree in trees.values():
            once(tree, ["--version"])  # compile the bytecode before timing anything
        for command in COMMANDS:
            times: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(args.runs):
                for name, tree in trees.items():
                    times[name].append(once(tree, command))
            shown = ", ".join(f"{name} {statistics.median(t):.2f} s" for name, t in times.items())
            print(f"rtctl {' '.join(command):<14} {shown} (medians of {args.runs})")


if __name__ == "__main__":
    main()
