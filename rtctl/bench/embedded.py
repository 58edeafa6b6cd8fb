"""Servers a bench starts for itself: a gateway, and the simulator in front of it.

Without a URL, ``rtctl bench`` measures something real at once: ``rtctl serve``
in a subprocess on a free loopback port with a fresh random secret (so the
bench can mint a token per client) and the built-in ``drift`` and ``arena`` room
types (for the ``state`` and ``arena`` scenarios), and with ``--through PROFILE`` an
``rtctl simulate`` proxy between them. Each is a separate process, as in
production, so the load generator does not share its event loop with what it
measures. A process is ready when it prints its banner's first line,
``rtctl gateway listening on ws://…`` or ``rtctl simulate listening on ws://…``.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rtctl.bench.plan import TokenPlan
from rtctl.client.endpoint import endpoint_url
from rtctl.exceptions import RtctlError

__all__ = [
    "START_TIMEOUT",
    "Embedded",
    "StartFailed",
    "embedded_gateway",
    "simulator_in_front",
    "target",
]

START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class StartFailed(RtctlError):
    """A server the bench started did not come up."""


@dataclass(frozen=True)
class Embedded:
    """A started server: its base URL (``ws://host:port``), PID and, for a gateway, its secret."""

    url: str
    pid: int
    secret: str | None = None


def _first_line(process: subprocess.Popen[str], what: str) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if " listening on ws://" not in line:
        process.kill()
        _, err = process.communicate(timeout=_STOP_TIMEOUT)
        tail = (err or "").strip().splitlines()[-1:] or ["no output"]
        raise StartFailed(f"{what} did not start: {tail[0]}")
    return line


@contextlib.contextmanager
def _process(command: list[str], what: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    try:
        yield process, _first_line(process, what)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@contextlib.contextmanager
def embedded_gateway(*, connections: int, flags: Sequence[str] = ()) -> Iterator[Embedded]:
    """``rtctl serve`` on 127.0.0.1, a free port, a random secret, ``drift`` and ``arena``
    rooms, for ``connections``; ``flags`` go to ``rtctl serve`` too."""
    secret = secrets.token_urlsafe(32)
    limit = str(max(2 * connections + 16, 10_000))  # a reconnect storm overlaps old and new
    command = [sys.executable, "-m", "rtctl", "serve", "--host", "127.0.0.1", "--port", "0",
               "--jwt-secret", secret, "--max-connections", limit, "--drain", "0",
               "--room-type", "drift", "--room-type", "arena", *flags]
    with _process(command, "the embedded gateway") as (process, line):
        yield Embedded(url=line.split()[-1].removesuffix("/ws"), pid=process.pid,
                       secret=secret)


@contextlib.contextmanager
def simulator_in_front(upstream: str, profile: str, *, mode: str = "ws") -> Iterator[Embedded]:
    """``rtctl simulate --profile PROFILE --mode MODE`` on a free port, relaying to
    ``upstream``."""
    command = [sys.executable, "-m", "rtctl", "simulate", "--listen", "127.0.0.1:0",
               "--control", "off", "--upstream", upstream, "--profile", profile,
               "--mode", mode]
    with _process(command, f"the simulator (profile {profile})") as (process, line):
        url = next(word for word in line.split() if word.startswith("ws://"))
        yield Embedded(url=url, pid=process.pid)


@contextlib.contextmanager
def target(url: str | None, *, through: str | None, clients: int, tokens: TokenPlan,
           mode: str = "ws") -> Iterator[tuple[str, TokenPlan, str]]:
    """The endpoint to load, the tokens to use and the gateway's own endpoint: ``url``'s,
    or an embedded gateway's.

    ``through`` puts the simulator with that profile (in ``mode``, the scenario's
    :attr:`~rtctl.bench.scenario.Scenario.through_mode`) in front of either: the endpoint
    is then the simulator's, and the gateway's is what a client that must not go through
    it (the ``arena`` scenario's observer) connects to.
    """
    with contextlib.ExitStack() as stack:
        if url is None:
            gateway = stack.enter_context(embedded_gateway(connections=clients))
            url, tokens = gateway.url, TokenPlan(secret=gateway.secret)
        direct = url
        if through is not None:
            url = stack.enter_context(simulator_in_front(url, through, mode=mode)).url
        yield endpoint_url(url), tokens, endpoint_url(direct)
