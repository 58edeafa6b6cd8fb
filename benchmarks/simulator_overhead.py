"""Measure what ``rtctl simulate`` costs with no impairment configured, side by side.

Two numbers, both against the same ``bare_echo.py`` server in one run:

* the median round trip of one connection sending one message at a time
  (``--pings`` of them), direct and through the proxy; the proxy may add at
  most 0.3 ms;
* the closed-loop message rate at 100 connections (``loadgen.py``, 4 requests
  in flight each), direct and through the proxy, ``--rounds`` rounds alternating
  which goes first; medians are compared, the proxy must keep >= 0.8x. The
  median of the per-round ratios (each round's two runs are back to back) is
  printed too: it is less sensitive to load from other processes between rounds.

The proxy runs as ``python -m rtctl simulate --listen 127.0.0.1:0 --control off``
in ws mode (``--mode tcp`` to measure that instead). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from loadgen import raise_nofile_limit, run_load
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    words = proc.stdout.readline().split()
    url = next(w for w in words if w.startswith("ws://"))
    return proc, url


async def median_rtt_ms(url: str, pings: int) -> float:
    """The median of ``pings`` sequential echo round trips on one connection."""
    async with connect(url, compression=None) as ws:
        for _ in range(100):  # warm-up
            await ws.send("x" * 32)
            await ws.recv()
        samples = []
        for _ in range(pings):
            start = time.perf_counter()
            await ws.send("x" * 32)
            await ws.recv()
            samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


async def measure(direct: str, proxied: str, rounds: int, pings: int, duration: float
                  ) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"rtt_direct": [], "rtt_proxy": [],
                                       "rate_direct": [], "rate_proxy": []}
    for round_ in range(rounds):
        order = [("direct", direct), ("proxy", proxied)]
        for name, url in order if round_ % 2 == 0 else order[::-1]:
            results[f"rtt_{name}"].append(await median_rtt_ms(url, pings))
            load = await run_load(url, connections=100, duration=duration, warmup=1.0)
            results[f"rate_{name}"].append(load.messages_per_s)
            print(f"round {round_ + 1} {name}: rtt {results[f'rtt_{name}'][-1]:.3f} ms, "
                  f"{load.messages_per_s:,.0f} msg/s", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--mode", default="ws", choices=["ws", "tcp"])
    args = parser.parse_args()
    raise_nofile_limit()
    echo, direct = _start([sys.executable, "benchmarks/bare_echo.py", "--port", "0"])
    proxy, proxied = _start([sys.executable, "-m", "rtctl", "simulate", "--listen",
                             "127.0.0.1:0", "--control", "off", "--mode", args.mode,
                             "--upstream", direct.removesuffix("/ws")])
    try:
        r = asyncio.run(measure(direct, proxied + "/ws", args.rounds, args.pings, args.duration))
    finally:
        for proc in (proxy, echo):
            proc.terminate()
            proc.wait(10)
    med = {k: statistics.median(v) for k, v in r.items()}
    added = med["rtt_proxy"] - med["rtt_direct"]
    ratio = med["rate_proxy"] / med["rate_direct"]
    print(f"| metric ({args.mode} mode, no impairment) | direct | through proxy | result "
          "| target |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(f"| median round trip, 1 connection | {med['rtt_direct']:.3f} ms | "
          f"{med['rtt_proxy']:.3f} ms | **+{added:.3f} ms** | ≤ +0.3 ms |")
    print(f"| message rate, 100 connections | {med['rate_direct']:,.0f}/s | "
          f"{med['rate_proxy']:,.0f}/s | **{ratio:.2f}×** | ≥ 0.8× |")
    paired = statistics.median(p / d for p, d in zip(r["rate_proxy"], r["rate_direct"],
                                                         strict=True))
    print(f"median of per-round rate ratios: {paired:.2f}×")
    for key, values in r.items():
        print(f"{key}: " + " · ".join(f"{v:,.3f}" if v < 100 else f"{v:,.0f}" for v in values))
    return 0 if added <= 0.3 and ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
