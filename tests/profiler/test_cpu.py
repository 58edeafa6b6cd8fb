"""Sampled stacks of the gateway's loop thread: the sampler, the table, ``rtctl profile --cpu``."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path

from rtctl.gateway.server import Gateway
from rtctl.profiler.cpu import StackSampler, fold, hot_functions
from rtctl.profiler.report import fetch
from tests.cli import test_cli
from tests.cli.test_cli import Served, rtctl
from tests.conftest import TIMING, client, make_token, rpc

env = test_cli.env  # the fixture: a fresh state directory, no token in the environment


def outer() -> str:
    return inner()


def inner() -> str:
    return fold(sys._getframe())


def test_fold_names_module_and_function_outermost_first() -> None:
    assert outer().endswith(f"{__name__}:outer;{__name__}:inner")


def test_hot_functions_counts_self_and_total_samples() -> None:
    stacks = {"m:a;m:b": 3, "m:a;m:c": 1, "m:a;m:b;m:d": 2}
    assert hot_functions(stacks) == [("m:b", 3, 5), ("m:d", 2, 2), ("m:c", 1, 1)]
    assert hot_functions(stacks, limit=1) == [("m:b", 3, 5)]


def test_sampler_sees_what_the_thread_runs() -> None:
    sampler = StackSampler(0)  # the thread id is set once the worker runs

    def spin() -> None:
        deadline = time.monotonic() + 10 * TIMING
        while sum(sampler.stacks.values()) < 5 and time.monotonic() < deadline:
            pass  # busy on purpose: this is what the samples must show

    worker = threading.Thread(target=spin)
    worker.start()
    sampler.thread_id = worker.ident or 0
    sampler.start()
    worker.join()
    stacks = sampler.stop()
    assert sum(stacks.values()) >= 5
    assert any(stack.endswith(f"{__name__}:spin") for stack in stacks)


async def test_profile_with_cpu_reports_the_loop_threads_stacks(gateway: Gateway) -> None:
    admin = make_token(role="admin")
    await asyncio.to_thread(fetch, gateway.url, admin, reset=True, cpu=True)
    async with client(gateway.url) as ws:
        deadline = time.monotonic() + 10 * TIMING
        sampler = gateway.profiler._sampler  # the running sampler: wait for some samples
        assert sampler is not None
        while sum(sampler.stacks.values()) < 3 and time.monotonic() < deadline:
            await rpc(ws, "sys.echo", ["busy"])
    document = await asyncio.to_thread(fetch, gateway.url, admin, reset=True)
    assert document["cpu"]["samples"] >= 3
    assert any("asyncio" in stack for stack in document["cpu"]["stacks"])
    assert gateway.profiler._sampler is None  # the read ended the interval and the sampling


def test_rtctl_profile_cpu_writes_folded_stacks(tmp_path: Path, env: dict[str, str]) -> None:
    served = Served(env=env)
    try:
        folded = tmp_path / "gw.folded"
        done = rtctl("profile", served.base_url, "--duration", "0.5s", "--cpu",
                     "--chart", str(tmp_path / "p.png"), "--folded", str(folded),
                     env=env, timeout=60)
    finally:
        served.stop()
    assert done.returncode == 0, done.stderr
    assert "CPU:" in done.stdout
    lines = folded.read_text().splitlines()
    assert lines
    assert all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
