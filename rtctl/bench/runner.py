"""Run a plan: in this process, or in several worker processes whose results merge.

One worker's life: open its clients over the ramp, wait until every worker
has (a barrier, so a fan-out publisher never publishes into a half-joined
room), run the warm-up and then the measured window, wait up to
``plan.drain`` seconds for answers still on their way, close. Workers report
their progress a few times a second and send their
:class:`~rtctl.bench.results.WorkerResult` back; histograms merge exactly.
Each worker also measures its own CPU time and event-loop lag over the window
(:mod:`rtctl.bench.bottleneck`), so the report can say when the generator,
not the server, set the pace. Workers run on uvloop.

Times are ``time.monotonic()``: CLOCK_MONOTONIC is one clock for every
process on the machine, so a fan-out delivery is timed against the
publisher's intended send time even when the two live in different workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rtctl.bench.bottleneck import LoadMeter
from rtctl.bench.plan import Plan
from rtctl.bench.results import BenchResult, Recorder, WorkerResult
from rtctl.bench.scenario import Context
from rtctl.bench.scenarios import scenario_for
from rtctl.bench.session import Session
from rtctl.exceptions import RtctlError

if sys.platform == "win32":  # uvloop has no Windows build
    from asyncio import run as run_loop
else:
    from uvloop import run as run_loop

__all__ = ["PROGRESS_INTERVAL", "BenchError", "Progress", "run", "run_worker"]

PROGRESS_INTERVAL = 0.25  # seconds between progress reports
_START_TIMEOUT = 120.0  # for every worker to open its clients

Progress = Callable[[int, int], None]  # (completed, errors) so far, over all workers


class BenchError(RtctlError):
    """The run could not be carried out (a worker failed)."""


async def _report(recorder: Recorder, progress: Progress) -> None:
    while True:
        progress(recorder.count, sum(recorder.errors.values()))
        await asyncio.sleep(PROGRESS_INTERVAL)


async def run_worker(plan: Plan, worker: int = 0, *, progress: Progress | None = None,
                     ready: Callable[[], Awaitable[None]] | None = None) -> WorkerResult:
    """Run worker ``worker``'s share of ``plan`` in the running loop."""
    scenario = scenario_for(plan)
    recorder = Recorder()
    ctx = Context(plan=plan, recorder=recorder, ramp_start=time.monotonic())
    indices = plan.clients_of(worker)
    sessions: list[Session | None] = list(
        await asyncio.gather(*(scenario.open(ctx, i) for i in indices)))
    if ready is not None:
        await ready()
    ctx.start = time.monotonic()
    ctx.end = ctx.start + plan.warmup + plan.duration
    recorder.open_window(ctx.start + plan.warmup, ctx.end)
    meter = LoadMeter(recorder.start, recorder.end)
    reporter = asyncio.get_running_loop().create_task(
        _report(recorder, progress)) if progress is not None else None
    try:
        sessions = list(await asyncio.gather(
            *(scenario.load(ctx, i, s) for i, s in zip(indices, sessions, strict=True))))
        load = meter.load()
        await asyncio.gather(*(scenario.close(ctx, s) for s in sessions))
    finally:
        if reporter is not None:
            reporter.cancel()
    return recorder.result(load)


def _worker_main(plan: Plan, worker: int, barrier: Any, out: Any) -> None:
    """A worker process: run, then put ``("done", worker, result)`` on ``out``."""

    async def ready() -> None:
        await asyncio.to_thread(barrier.wait, _START_TIMEOUT)

    def progress(completed: int, errors: int) -> None:
        out.put(("progress", worker, (completed, errors)))

    try:
        result = run_loop(run_worker(plan, worker, progress=progress, ready=ready))
    except BaseException as exc:  # the parent shows it as one line
        out.put(("failed", worker, f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    out.put(("done", worker, result))


def run(plan: Plan, *, progress: Progress | None = None) -> BenchResult:
    """Run ``plan`` (in ``plan.workers`` processes when more than one) and merge.

    A plan the scenario cannot run, or a server it cannot run against (its
    :meth:`~rtctl.bench.scenario.Scenario.prepare`), fails before any client starts.
    """
    run_loop(scenario_for(plan).prepare(plan))
    if plan.workers == 1:
        parts = [run_loop(run_worker(plan, progress=progress))]
    else:
        parts = _run_processes(plan, progress)
    return BenchResult.merge(parts, scenario=plan.scenario, clients=plan.clients,
                             rate=plan.rate, duration_s=plan.duration)


def _run_processes(plan: Plan, progress: Progress | None) -> list[WorkerResult]:
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    barrier = context.Barrier(plan.workers)
    out = context.Queue()
    processes = [context.Process(target=_worker_main, args=(plan, w, barrier, out),
                                 name=f"rtctl-bench-{w}", daemon=True)
                 for w in range(plan.workers)]
    for process in processes:
        process.start()
    latest = dict.fromkeys(range(plan.workers), (0, 0))
    results: dict[int, WorkerResult] = {}
    try:
        while len(results) < plan.workers:
            try:
                kind, worker, body = out.get(timeout=1.0)
            except queue.Empty:
                if any(not p.is_alive() and p.exitcode for p in processes):
                    raise BenchError("a bench worker died without a result") from None
                continue
            if kind == "failed":
                raise BenchError(f"bench worker {worker} failed: {body}")
            if kind == "done":
                results[worker] = body
            else:
                latest[worker] = body
                if progress is not None:
                    progress(sum(c for c, _ in latest.values()),
                             sum(e for _, e in latest.values()))
    finally:
        barrier.abort()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return [results[w] for w in range(plan.workers)]
