"""A cluster of real processes on 127.0.0.1: what a failover drill starts, kills and restarts.

``redis-server`` and ``nats-server`` (:class:`ServerProcess`), several ``rtctl serve
--redis --nats`` nodes (:class:`GatewayNode`) and HAProxy in front of them
(:class:`HAProxy`, with ``deploy/haproxy/haproxy.cfg``), each on a free loopback port.
Neither Redis, NATS nor HAProxy accepts port 0, so a free port is found by binding a
socket first; the nodes get fixed ports too, because HAProxy's configuration names them
before they start, and a node restarted after a kill must come back where HAProxy looks.

A process is *ready* when it does what it is for: Redis and NATS accept a TCP
connection, a node answers ``/readyz`` 200 (it reached Redis and NATS), HAProxy answers
on its admin socket and sees every node UP. Every wait is bounded and fails with
:class:`~rtctl.bench.embedded.StartFailed`, naming the process and the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from rtctl.bench.embedded import START_TIMEOUT, StartFailed
from rtctl.bench.plan import TokenPlan

__all__ = [
    "STOP_TIMEOUT",
    "Cluster",
    "GatewayNode",
    "HAProxy",
    "ServerProcess",
    "answers",
    "end_process",
    "find_program",
    "free_port",
    "start_backends",
    "start_cluster",
    "start_gateways",
    "wait_until",
]

STOP_TIMEOUT = 10.0
_POLL = 0.02  # s between two looks at a condition that has a deadline
_BACKEND = "gateways"  # the backend of deploy/haproxy/haproxy.cfg
_GATEWAY_VARIABLE = re.compile(r'"\$\{(GW\d+)\}"')  # a `server` line's address variable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_program(name: str) -> str:
    """The path of a program on PATH, or StartFailed naming what installs it."""
    path = shutil.which(name)
    if path is None:
        raise StartFailed(f"{name} is not installed (scripts/ensure-tools.sh installs it)")
    return path


def answers(url: str) -> bool:
    """Does a GET of ``url`` answer 200 (within a second)?"""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):  # HTTPError (a 503) is a URLError
        return False


def _log_tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return "no output"
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str,
               timeout: float, log: Path | None = None, *, poll: float = _POLL) -> None:
    """Poll ``ready()`` every ``poll`` s until it is true; StartFailed if the process exits
    or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise StartFailed(f"{what} exited with {process.returncode}: {_log_tail(log)}")
        if time.monotonic() > deadline:
            raise StartFailed(f"{what} not ready after {timeout:g} s: {_log_tail(log)}")
        time.sleep(poll)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def end_process(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    """Send ``sig`` and wait; a process that outlives STOP_TIMEOUT is killed."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServerProcess:
    """``redis-server`` or ``nats-server`` on a fixed port: stopped and started again, it
    comes back on the same port (Redis without persistence: it comes back empty)."""

    def __init__(self, program: str, port: int | None = None, *, path: str | None = None,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.program = program
        self.path = path or find_program(program)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "redis" if self.program == "redis-server" else "nats"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        if self.program == "redis-server":  # no persistence: a restart loses everything
            return [self.path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"]
        return [self.path, "-a", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> Self:
        self.proc = subprocess.Popen(self._argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: _listening(self.port), self.proc, self.program, self.start_timeout)
        return self

    def stop(self) -> None:
        end_process(self.proc, signal.SIGTERM)
        self.proc = None


class GatewayNode:
    """One ``rtctl serve`` process on a fixed port (``--redis``/``--nats`` when given, else
    the in-memory backends); its output goes to ``log``."""

    def __init__(self, node_id: str, *, secret: str, log: Path, redis_url: str | None = None,
                 nats_url: str | None = None, flags: Sequence[str] = ()) -> None:
        self.node_id = node_id
        self.port = free_port()
        self.log = log
        backends = [*(("--redis", redis_url) if redis_url else ()),
                    *(("--nats", nats_url) if nats_url else ())]
        self.argv = [sys.executable, "-m", "rtctl", "serve", "--host", "127.0.0.1",
                     "--port", str(self.port), "--jwt-secret", secret, *backends,
                     "--node-id", node_id, "--log-level", "warning", *flags]
        self.proc: subprocess.Popen[bytes] | None = None
        self.signalled = False  # since its launch: it is dead or on its way out

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process; :meth:`wait_ready` waits for it (so several start together)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.signalled = False

    def ready(self) -> bool:
        """Does ``/readyz`` answer 200 (listening, Redis and NATS reached, not draining)?"""
        return answers(f"http://{self.address}/readyz")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        assert self.proc is not None, "launch() first"
        wait_until(self.ready, self.proc, f"gateway {self.node_id}", timeout, self.log)

    def signal(self, sig: signal.Signals) -> None:
        """SIGKILL (a crash) or SIGTERM (a drain: not ready, then 1001 after ``--drain``)."""
        assert self.proc is not None, "not started"
        self.proc.send_signal(sig)
        self.signalled = True

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None, "not started"
        return self.proc.wait(timeout)

    def stop(self) -> None:
        end_process(self.proc, signal.SIGKILL)  # a teardown: nothing to drain for
        self.proc = None


class HAProxy:
    """HAProxy in the foreground with ``config``; the gateways' addresses go in ``GW1``... and
    its admin socket (``show stat``) lies in ``workdir``."""

    def __init__(self, config: Path, gateways: Sequence[str], *, workdir: Path,
                 path: str | None = None) -> None:
        names = _GATEWAY_VARIABLE.findall(config.read_text())
        if len(names) != len(gateways):
            raise ValueError(f"{config} names {len(names)} gateways ({', '.join(names)}), "
                             f"not {len(gateways)}")
        self.config = config
        self.path = path or find_program("haproxy")
        self.port = free_port()
        self.socket = workdir / "haproxy.sock"
        self.log = workdir / "haproxy.log"
        self.env = {**os.environ, **dict(zip(names, gateways, strict=True)),
                    "RTCTL_LISTEN": f"127.0.0.1:{self.port}",
                    "HAPROXY_STATS_SOCKET": str(self.socket)}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def check(self) -> subprocess.CompletedProcess[str]:
        """``haproxy -c``: does HAProxy accept the configuration with these addresses?"""
        return subprocess.run([self.path, "-c", "-f", str(self.config)], env=self.env,
                              capture_output=True, text=True, timeout=STOP_TIMEOUT,
                              check=False)

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self.path, "-db", "-f", str(self.config)],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_until(lambda: _listening(self.port) and self._answers(), self.proc, "haproxy",
                   timeout, self.log)
        return self

    def _answers(self) -> bool:
        try:
            self.states()
        except OSError:
            return False
        return True

    def command(self, line: str) -> str:
        """One command on the admin socket (HAProxy management guide §9.3) and its answer."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2.0)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _stat(self, column: str) -> dict[str, str]:
        """One column of ``show stat`` (CSV, HAProxy management guide §9.1) by gateway."""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        name, kind, wanted = (header.index(c) for c in ("svname", "pxname", column))
        return {cells[name]: cells[wanted] for cells in (row.split(",") for row in rows[1:])
                if len(cells) > wanted and cells[kind] == _BACKEND
                and cells[name] not in ("BACKEND", "FRONTEND")}

    def states(self) -> dict[str, str]:
        """Each gateway's state as HAProxy sees it: ``UP``, ``DOWN``, ``NOLB`` (drain, no
        new players), or a transition such as ``UP 1/2``."""
        return self._stat("status")

    def connections(self) -> dict[str, int]:
        """The connections HAProxy holds to each gateway now."""
        return {name: int(count) for name, count in self._stat("scur").items()}

    def sticky(self, key: str) -> str | None:
        """The gateway a stickiness key (``user:alice``, ``match:7``) points at, if any."""
        found = re.search(r"server_key=(\S+)", self.command(f"show table {_BACKEND} key {key}"))
        return found[1] if found else None

    def wait_states(self, want: Mapping[str, str], timeout: float) -> float:
        """Wait until every gateway named in ``want`` is in its state; the seconds it took."""
        return self._wait_for(self.states, want, timeout)

    def wait_connections(self, want: Mapping[str, int], timeout: float) -> float:
        """Wait until HAProxy holds ``want[name]`` connections to each gateway named there."""
        return self._wait_for(self.connections, want, timeout)

    def _wait_for(self, read: Callable[[], Mapping[str, object]],
                  want: Mapping[str, object], timeout: float) -> float:
        assert self.proc is not None, "not started"
        started = time.monotonic()
        try:
            wait_until(lambda: all(read().get(k) == v for k, v in want.items()), self.proc,
                       f"haproxy to see {dict(want)}", timeout, self.log)
        except StartFailed as exc:
            raise StartFailed(f"{exc} (it sees {dict(read())})") from None
        return time.monotonic() - started

    def stop(self) -> None:
        end_process(self.proc, signal.SIGTERM)  # -db: SIGTERM stops at once, closing every tunnel
        self.proc = None


@dataclass
class Cluster:
    """Started processes: Redis, NATS, the gateways (``gw1``... in HAProxy), HAProxy."""

    redis: ServerProcess
    nats: ServerProcess
    gateways: list[GatewayNode]
    haproxy: HAProxy
    secret: str

    def server_of(self, node: GatewayNode) -> str:
        """The node's server name in HAProxy (``gw1``...)."""
        return f"gw{self.gateways.index(node) + 1}"

    def all_up(self) -> dict[str, str]:
        return dict.fromkeys(map(self.server_of, self.gateways), "UP")

    @property
    def tokens(self) -> TokenPlan:
        """Tokens the gateways accept, one user each."""
        return TokenPlan(secret=self.secret)

    def restore(self, timeout: float = START_TIMEOUT) -> None:
        """Start again what a drill stopped or killed (a draining node once it has exited),
        and wait until HAProxy sees every gateway UP and holding no connection."""
        for server in (self.redis, self.nats):
            if server.proc is None:
                server.start()
        stopped = [node for node in self.gateways
                   if node.signalled or node.proc is None or node.proc.poll() is not None]
        for node in stopped:
            end_process(node.proc, signal.SIGTERM)  # SIGTERMed already: let it finish its drain
        for node in stopped:
            node.launch()
        for node in stopped:
            node.wait_ready(timeout)
        self.haproxy.wait_states(self.all_up(), timeout)
        self.haproxy.wait_connections(dict.fromkeys(self.all_up(), 0), timeout)


def start_backends(stack: contextlib.ExitStack, *, which: Callable[[str], str] = find_program,
                   start_timeout: float = START_TIMEOUT) -> tuple[ServerProcess, ServerProcess]:
    """Redis and NATS on free ports, stopped when ``stack`` closes."""
    redis, nats = (ServerProcess(name, path=which(name), start_timeout=start_timeout)
                   for name in ("redis-server", "nats-server"))
    for server in (redis, nats):
        stack.callback(server.stop)
        server.start()
    return redis, nats


def start_gateways(stack: contextlib.ExitStack, nodes: Sequence[GatewayNode],
                   timeout: float = START_TIMEOUT) -> None:
    """Launch the nodes side by side and wait until each is ready; killed when ``stack``
    closes."""
    for node in nodes:
        stack.callback(node.stop)
        node.launch()
    for node in nodes:
        node.wait_ready(timeout)


@contextlib.contextmanager
def start_cluster(*, config: Path, workdir: Path, nodes: int = 3,
                  gateway_flags: Sequence[str] = (),
                  which: Callable[[str], str] = find_program,
                  start_timeout: float = START_TIMEOUT) -> Iterator[Cluster]:
    """Start everything (the nodes side by side), yield it, stop everything, even on error.

    ``which`` finds each program (tests pass one that skips or fails the test);
    ``gateway_flags`` go to every ``rtctl serve``. The nodes' logs are in ``workdir``.
    """
    secret = secrets.token_urlsafe(32)
    haproxy_path = which("haproxy")
    with contextlib.ExitStack() as stack:
        redis, nats = start_backends(stack, which=which, start_timeout=start_timeout)
        gateways = [GatewayNode(f"gw-{i}", secret=secret, redis_url=redis.url,
                                nats_url=nats.url, log=workdir / f"gw-{i}.log",
                                flags=gateway_flags) for i in range(1, nodes + 1)]
        start_gateways(stack, gateways, start_timeout)
        haproxy = HAProxy(config, [node.address for node in gateways], workdir=workdir,
                          path=haproxy_path)
        stack.callback(haproxy.stop)
        cluster = Cluster(redis, nats, gateways, haproxy.start(start_timeout), secret)
        haproxy.wait_states(cluster.all_up(), start_timeout)
        yield cluster
