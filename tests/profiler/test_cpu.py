"""The loop's sampled stacks: the SIGPROF sampler, the table, ``rtctl profile --cpu``."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from websockets.sync.client import connect

from rtctl.gateway.server import Gateway
from rtctl.profiler.cpu import SamplerUnavailable, StackSampler, hot_functions
from rtctl.profiler.report import ProfileFailed, fetch
from rtctl.protocol import jsonrpc
from tests.cli import test_cli
from tests.cli.test_cli import Served, rtctl
from tests.conftest import (
    SECRET,
    TIMING,
    GatewayFactory,
    client,
    gateway_config,
    make_token,
    rpc,
)
from tests.profiler import game_router
from tests.profiler.game_router import burn_cpu_in_the_handler

env = test_cli.env  # the fixture: a fresh state directory, no token in the environment
CLIENTS = 4  # concurrent connections keeping the loop busy
BURN = f"{game_router.__name__}:{burn_cpu_in_the_handler.__name__}"


@pytest.fixture
def no_profiling_timer() -> Iterator[None]:
    """Each test starts and must end with SIGPROF's default handler and no timer armed."""
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGPROF) is signal.SIG_DFL
    yield
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGPROF) is signal.SIG_DFL


def test_hot_functions_counts_self_and_total_samples() -> None:
    stacks = {"m:a;m:b": 3, "m:a;m:c": 1, "m:a;m:b;m:d": 2}
    assert hot_functions(stacks) == [("m:b", 3, 5), ("m:d", 2, 2), ("m:c", 1, 1)]
    assert hot_functions(stacks, limit=1) == [("m:b", 3, 5)]


def test_the_sampler_sees_python_work_and_folds_it_outermost_first(
        no_profiling_timer: None) -> None:
    sampler = StackSampler()

    def spin() -> None:
        deadline = time.monotonic() + 10 * TIMING
        while sampler.samples < 20 and time.monotonic() < deadline:
            burn_cpu_in_the_handler(0.001)

    sampler.start()
    try:
        spin()
    finally:
        stacks = sampler.stop()
    assert sum(stacks.values()) == sampler.samples >= 20
    assert hot_functions(stacks)[0][0] == BURN
    assert any(s.endswith(f"{__name__}:spin;{BURN}") for s in stacks)


def test_stop_puts_back_the_previous_handler(no_profiling_timer: None) -> None:
    def mine(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("not while sampling")

    signal.signal(signal.SIGPROF, mine)
    try:
        sampler = StackSampler()
        sampler.start()
        assert signal.getsignal(signal.SIGPROF) == sampler._sample
        sampler.stop()
        assert signal.getsignal(signal.SIGPROF) is mine
    finally:
        signal.signal(signal.SIGPROF, signal.SIG_DFL)


def test_a_running_profiling_timer_is_left_alone(no_profiling_timer: None) -> None:
    signal.signal(signal.SIGPROF, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_PROF, 3600.0)  # another profiler's, far from firing
    try:
        with pytest.raises(SamplerUnavailable, match="in use by another profiler"):
            StackSampler().start()
        assert signal.getsignal(signal.SIGPROF) is signal.SIG_IGN
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0.0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)


def test_only_the_main_thread_can_sample(no_profiling_timer: None) -> None:
    failures: list[BaseException] = []

    def start() -> None:
        try:
            StackSampler().start()
        except SamplerUnavailable as exc:
            failures.append(exc)

    worker = threading.Thread(target=start)
    worker.start()
    worker.join()
    assert [str(e) for e in failures] == ["CPU sampling needs the event loop in the main "
                                          "thread (Python runs signal handlers only there)"]


async def test_a_handlers_own_function_tops_the_table_under_load(
        start_gateway: GatewayFactory, no_profiling_timer: None) -> None:
    """The issue's case: a sampler thread saw only the loop's I/O, never this function."""
    gateway = await start_gateway(game_router.router)
    admin = make_token(role="admin")
    await asyncio.to_thread(fetch, gateway.url, admin, reset=True, cpu=True)
    sampler = gateway.profiler._sampler
    assert sampler is not None

    async def player() -> None:
        async with client(gateway.url) as ws:
            deadline = time.monotonic() + 20 * TIMING
            while sampler.samples < 100 and time.monotonic() < deadline:
                await rpc(ws, "game.step")

    await asyncio.gather(*(player() for _ in range(CLIENTS)))
    document = await asyncio.to_thread(fetch, gateway.url, admin, reset=True)
    assert gateway.profiler._sampler is None  # the read ended the sampling
    cpu = document["cpu"]
    assert cpu["samples"] >= 100
    assert cpu["interval_ms"] == 5
    name, own, _ = hot_functions(cpu["stacks"])[0]
    assert name == BURN
    assert own > cpu["samples"] / 2  # most of the loop's CPU went there


def test_a_loop_off_the_main_thread_answers_409(no_profiling_timer: None) -> None:
    started, stop = threading.Event(), threading.Event()
    gateways: list[Gateway] = []

    async def serve() -> None:
        gateway = Gateway(gateway_config())
        await gateway.start()
        gateways.append(gateway)
        started.set()
        await asyncio.to_thread(stop.wait, 30 * TIMING)
        await gateway.shutdown(drain=0)

    worker = threading.Thread(target=asyncio.run, args=(serve(),))
    worker.start()
    try:
        assert started.wait(10 * TIMING)
        with pytest.raises(ProfileFailed, match="HTTP 409: CPU sampling needs the event "
                                                "loop in the main thread"):
            fetch(gateways[0].url, make_token(role="admin"), reset=True, cpu=True)
    finally:
        stop.set()
        worker.join()


def test_rtctl_profile_cpu_names_the_game_function(tmp_path: Path,
                                                    env: dict[str, str]) -> None:
    """End to end: ``rtctl serve --router``, a player in a thread, ``rtctl profile --cpu``."""
    served = Served("--jwt-secret", SECRET, "--router", f"{game_router.__name__}:router",
                    env=env)
    profiling = threading.Event()
    done = threading.Event()
    calls: list[int] = []

    def play() -> None:
        with connect(served.base_url + "/ws", compression=None,
                     additional_headers={"Authorization": f"Bearer {make_token()}"}) as ws:
            while not done.is_set():
                ws.send(jsonrpc.dumps(jsonrpc.encode_request("game.step", None, 1)).decode())
                ws.recv(timeout=10 * TIMING)
                calls.append(1)
                if len(calls) == 20:
                    profiling.set()  # the player is busy: profile now

    player = threading.Thread(target=play)
    player.start()
    folded = tmp_path / "gw.folded"
    try:
        assert profiling.wait(10 * TIMING)
        run = rtctl("profile", served.base_url, "--duration", "2s", "--cpu",
                    "--token", make_token("admin", role="admin"),
                    "--chart", str(tmp_path / "p.png"), "--folded", str(folded),
                    env={**env, "COLUMNS": "200"}, timeout=60)
    finally:
        done.set()
        player.join()
        served.stop()
    assert run.returncode == 0, run.stderr
    table = run.stdout[run.stdout.index("CPU:"):].splitlines()
    first_row = next(line for line in table if "%" in line)
    assert BURN in first_row
    stacks = {stack: int(count) for stack, _, count in
              (line.rpartition(" ") for line in folded.read_text().splitlines())}
    assert hot_functions(stacks)[0][0] == BURN
