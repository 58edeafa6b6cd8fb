"""Playing the client scenarios in runs, with the driver started once per run.

A scenario after which the client MUST NOT come back (4009, 4003) ends its run, so the
scenarios are cut into runs at those (docs/conformance.md). Everything that can fail
to come is bounded by ``timeout``: a driver that never connects fails every check of
every run with that one cause, without waiting for each (the design's "a dead client is
reported in well under a minute").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.exceptions import ConnectionClosed

from rtctl.conformance.results import Outcome, Result
from rtctl.conformance.scenarios import SCENARIOS
from rtctl.conformance.scripted import ClientGone, NoShow, ScriptedGateway
from rtctl.conformance.scripted_play import Play, Scenario, Verdicts

__all__ = ["run_scenarios", "runs", "select"]

Announce = Callable[[ScriptedGateway], None]

_TERM_GRACE = 2.0  # s a driver has to exit after SIGTERM before SIGKILL
_STDERR_FD = 2  # the process's own, not sys.stderr (which a test runner may have replaced)


def select(names: Sequence[str]) -> list[Scenario]:
    """The scenarios named (all when none), in their order; ValueError for an unknown name."""
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"no scenario {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(known)}")
    return [s for s in SCENARIOS if not names or s.name in names]


def runs(scenarios: Sequence[Scenario]) -> list[list[Scenario]]:
    """Cut ``scenarios`` into runs: a final scenario ends its run."""
    cut: list[list[Scenario]] = [[]]
    for scenario in scenarios:
        if scenario.final and cut[-1]:
            cut.append([])
        cut[-1].append(scenario)
        if scenario.final:
            cut.append([])
    return [run for run in cut if run]


def _failed(scenario: Scenario, cause: str, found: Verdicts | None = None) -> list[Result]:
    known = found.found if found is not None else {}
    return [Result(c.id, c.section, c.title, *known.get(c.id, (Outcome.FAIL, cause)))
            for c in scenario.checks]


async def _start(command: Sequence[str], gw: ScriptedGateway) -> asyncio.subprocess.Process:
    """The driver, in its own process group (so ending it ends what it started), its
    standard output sent to our standard error: whatever it prints stays out of ``--json``."""
    env = {**os.environ, "RTCTL_URL": gw.url, "RTCTL_TOKEN_URL": gw.token_url}
    return await asyncio.create_subprocess_exec(*command, env=env, start_new_session=True,
                                                stdout=_STDERR_FD)


async def _end(process: asyncio.subprocess.Process | None, timeout: float) -> None:
    """Let the driver exit by itself within ``timeout``, else end it (its process group):
    SIGTERM, then SIGKILL after :data:`_TERM_GRACE`."""
    if process is None:
        return
    # asyncio.wait, not asyncio.timeout: this runs in ``finally`` of a cancelled task too,
    # where a timeout's own cancellation would not come back as TimeoutError (Python 3.11).
    exited = asyncio.ensure_future(process.wait())
    try:
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                _signal_group(process, sig)
            done, _ = await asyncio.wait({exited},
                                         timeout=timeout if sig is None else _TERM_GRACE)
            if done:
                return
    except BaseException:
        # A signal (Ctrl-C, SIGTERM) while we wait, after ``conformance.done`` or a second
        # one while ending: no more grace, or the driver (its own session) outlives us.
        _signal_group(process, signal.SIGKILL)
        await asyncio.wait({exited}, timeout=_TERM_GRACE)  # reap it, so nothing is left
        raise
    exited.cancel()


def _signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


async def _first_connection(gw: ScriptedGateway, process: asyncio.subprocess.Process | None,
                            timeout: float) -> None:
    """Wait for the driver's first connection; NoShow saying why none came."""
    arrival = asyncio.ensure_future(gw.next_connection(timeout, "connection from the client"))
    waits: list[asyncio.Future[Any]] = [arrival]
    if process is not None:
        waits.append(asyncio.ensure_future(process.wait()))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits[1:]:
        task.cancel()
    if arrival.done():
        gw.current = arrival.result()
        return
    arrival.cancel()
    assert process is not None  # nothing else ends the wait
    raise NoShow(f"the driver exited with status {process.returncode} before connecting")


async def _play(scenario: Scenario, play: Play) -> tuple[list[Result], str | None]:
    """Play ``scenario``: its results, and the cause if it lost the client."""
    play.verdicts = Verdicts()
    started = time.perf_counter()
    try:
        await scenario.play(play)
    except NoShow as exc:
        cause = str(exc)
        return (_failed(scenario, cause, play.verdicts),
                cause if isinstance(exc, ClientGone) else None)
    except ConnectionClosed as exc:  # a ping or a send the client's close cut short
        cause = f"the client's connection closed mid-scenario ({exc})"
        return _failed(scenario, cause, play.verdicts), None
    seconds = time.perf_counter() - started
    first, *rest = _failed(scenario, "not reached", play.verdicts)
    # The scenario's checks are judged in one play: its time goes on the first, once.
    return [dataclasses.replace(first, seconds=seconds), *rest], None


async def _play_run(run: Sequence[Scenario], gw: ScriptedGateway,
                    process: asyncio.subprocess.Process | None, timeout: float,
                    first_wait: float) -> tuple[list[Result], str | None, float]:
    """Play one run: its results, the cause that fails every later run (a driver that never
    connected), and how long the driver may take to exit by itself."""
    try:
        await _first_connection(gw, process, timeout if process is not None else first_wait)
    except NoShow as exc:
        return [r for s in run for r in _failed(s, str(exc))], str(exc), 0
    results: list[Result] = []
    play = Play(gw, timeout, Verdicts())  # one per run: it counts the backoff attempts
    lost: str | None = None
    for scenario in run:
        if lost is not None:
            results += _failed(scenario, lost)
            continue
        played, lost = await _play(scenario, play)
        results += played
    current = gw.current
    if run[-1].final or lost is not None or current is None:
        return results, None, 0  # its client stopped: it may wait to be ended
    await current.notify("conformance.done")
    return results, None, timeout  # told it is done, it exits by itself


async def run_scenarios(scenarios: Sequence[Scenario], *, command: Sequence[str],
                        timeout: float, first_wait: float | None = None,
                        host: str = "127.0.0.1", port: int = 0,
                        announce: Announce | None = None) -> list[Result]:
    """Start the scripted gateway, play ``scenarios`` against the driver ``command`` (or a
    client started by hand; ``announce`` is called as each run starts), and return every
    check's result. The driver is ended however the run ends, cancellation included. A
    client started by hand gets ``first_wait`` (default ``timeout``) to connect in each run:
    a person starts it."""
    results: list[Result] = []
    async with ScriptedGateway(host, port) as gw:
        dead: str | None = None  # the cause that fails everything left
        for run in runs(scenarios):
            if dead is not None:
                results += [r for s in run for r in _failed(s, dead)]
                continue
            if announce is not None:
                announce(gw)
            process = await _start(command, gw) if command else None
            grace = 0.0
            try:
                played, dead, grace = await _play_run(run, gw, process, timeout,
                                                      first_wait or timeout)
                results += played
            finally:
                await _end(process, grace)
            gw.reset()
    return results
