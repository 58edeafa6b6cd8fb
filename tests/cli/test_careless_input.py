"""Careless input to every command, as a table: one line on stderr, the promised exit code.

Exit codes (``rtctl --help``, :mod:`rtctl.cli.exits`): 2 for input that cannot be
right (an impossible value, a file that is missing or does not parse), 1 for a
command that ran and failed (a server that is not there, a port in use, a bench
that completed nothing). Never a traceback. ``{tmp}`` is a directory holding
files that do not parse; ``{busy}`` a port something already listens on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import test_cli
from tests.cli.test_cli import rtctl

env = test_cli.env  # the fixture: a fresh state directory, no token in the environment

USAGE, FAILED = 2, 1
QUICK_BENCH = ["--clients", "2", "--duration", "0.2s", "--warmup", "0s"]

CASES: list[tuple[list[str], int, str]] = [
    # serve: impossible values, files that are not there or do not parse, a bad router
    (["serve", "--port", "99999"], USAGE, "port 99999 is not a TCP port (0 to 65535"),
    (["serve", "--port", "-1"], USAGE, "port -1 is not a TCP port"),
    (["serve", "--port", "0", "--max-connections", "0"], USAGE,
     "limits max_connections must be above 0, got 0"),
    (["serve", "--port", "0", "--ping-interval", "0"], USAGE,
     "heartbeat interval must be above 0"),
    (["serve", "--port", "0", "--max-message-size", "lots"], USAGE, "size 'lots' is not a number"),
    (["serve", "--port", "0", "--transport", "picows", "--compression"], USAGE,
     "permessage-deflate needs the websockets transport"),
    (["serve", "--port", "0", "--outbound-rate", "fast"], USAGE, "rate 'fast' is not a number"),
    (["serve", "--port", "0", "--inbound-rate", "50/day"], USAGE, "call rate '50/day' is not a"),
    (["serve", "--port", "0", "--batch-window", "2"], USAGE, "window '2' is neither a time"),
    (["serve", "--port", "0", "--batch-window", "1GiB"], USAGE,
     "routing batch_bytes (1073741824) is above limits max_message_size (65536)"),
    (["serve", "--port", "0", "--outbound-burst", "1KiB"], USAGE,
     "an outbound burst needs an outbound rate"),
    (["serve", "--port", "0", "--ping-interval", "5 parsecs"], USAGE, "duration '5 parsecs'"),
    (["serve", "--port", "0", "--log-level", "loud"], USAGE, "--log-level must be"),
    (["serve", "--port", "0", "--transport", "turbo"], USAGE,
     "unknown transport 'turbo' (choose websockets or picows)"),
    (["serve", "--port", "0", "--jwt-secret", "a", "--jwks", "x.json"], USAGE, "not several"),
    (["serve", "--port", "0", "--config", "/nonexistent/rtctl.toml"], USAGE,
     "cannot read config file"),
    (["serve", "--port", "0", "--config", "{tmp}/bad.toml"], USAGE, "is not valid TOML"),
    (["serve", "--port", "0", "--jwks", "{tmp}/bad.json"], USAGE, "is not valid JSON"),
    (["serve", "--port", "0", "--jwt-public-key", "/nonexistent.pem"], USAGE,
     "cannot read the public key file"),
    (["serve", "--port", "0", "--redis", "localhost"], USAGE, "--redis expects a URL"),
    (["serve", "--port", "0", "--nats", "nats://127.0.0.1:4222"], USAGE,
     "--nats needs --redis"),
    (["serve", "--port", "0", "--recovery-grace", "soon"], USAGE, "duration 'soon'"),
    (["serve", "--port", "0", "--history-size", "0"], USAGE,
     "history size must be 1 or more messages"),
    (["serve", "--port", "0", "--history-ttl", "48h"], USAGE, "history ttl must be above 0"),
    (["serve", "--port", "0", "--router", "nocolon"], USAGE, "--router expects MODULE:ATTR"),
    (["serve", "--port", "0", "--router", "no_such_module_xyz:router"], USAGE,
     "cannot import module 'no_such_module_xyz'"),
    (["serve", "--port", "0", "--router", "json:nothing_here"], USAGE,
     "module 'json' has no attribute 'nothing_here'"),
    (["serve", "--port", "0", "--router", "json:dumps"], USAGE,
     "json:dumps is a function, not an rtctl Router"),
    (["serve", "--port", "0", "--router", "tests.fixtures.clash_router:router"], USAGE,
     "method 'sys.ping' is registered twice"),
    (["serve", "--port", "0", "--room-type", "nosuchtype"], USAGE,
     "--room-type expects NAME=MODULE:ATTR"),
    (["serve", "--port", "0", "--room-type", "arena=json:dumps"], USAGE,
     "json:dumps is not an rtctl StateRoom class"),
    (["serve", "--port", "0", "--room-type", "arena=no_such_module_xyz:Room"], USAGE,
     "--room-type: cannot import module 'no_such_module_xyz'"),
    (["serve", "--port", "0", "--room-type", "a:b=rtctl.services.drift:DriftRoom"], USAGE,
     "room type 'a:b': a name is 1 to 32"),
    (["serve", "--port", "{busy}"], FAILED, "cannot listen on 127.0.0.1:{busy}"),
    (["serve", "--port", "0", "--redis", "redis://127.0.0.1:1"], FAILED,
     "cannot start: Backend unavailable: redis"),
    # simulate
    (["simulate", "--listen", "127.0.0.1:99999"], USAGE,
     "--listen expects HOST:PORT with a port from 0 to 65535"),
    (["simulate", "--listen", "nowhere"], USAGE, "--listen expects HOST:PORT"),
    (["simulate", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:70000"], USAGE,
     "--control expects HOST:PORT"),
    (["simulate", "--loss", "5"], USAGE, "more than 100%"),
    (["simulate", "--latency", "fast"], USAGE, "not a number"),
    (["simulate", "--mode", "udp"], USAGE, "--mode must be ws or tcp"),
    (["simulate", "--latency", "5ms", "--rtt", "10ms"], USAGE, "not both"),
    (["simulate", "--profile", "moon"], USAGE, "no profile named 'moon'"),
    (["simulate", "--profile", "{tmp}/bad.toml"], USAGE, "profile {tmp}/bad.toml"),
    (["simulate", "--upstream", "http://127.0.0.1:8765"], USAGE,
     "must be a ws:// or wss:// URL"),
    (["simulate", "--listen", "127.0.0.1:{busy}", "--control", "off"], FAILED,
     "--listen: cannot listen on 127.0.0.1:{busy}"),
    (["simulate", "show", "--control", "127.0.0.1:1"], FAILED,
     "cannot reach the simulator's control API"),
    # call and token: the exit codes `rtctl call --help` promises
    (["call", "ws://127.0.0.1:1", "sys.echo", "{oops"], USAGE, "PARAMS_JSON is not JSON"),
    (["call", "http://127.0.0.1:1", "sys.ping"], USAGE, "must start with ws:// or wss://"),
    (["call", "ws://127.0.0.1:99999", "sys.ping"], USAGE, "has no valid port"),
    (["call", "ws://127.0.0.1:1", "sys.ping", "--timeout", "soon"], USAGE, "duration 'soon'"),
    (["call", "ws://127.0.0.1:1", "sys.ping", "--timeout", "0"], USAGE,
     "--timeout must be above 0"),
    (["call", "ws://127.0.0.1:1", "sys.ping"], FAILED, "cannot reach"),
    (["token", "--sub", "alice", "--ttl", "0s"], USAGE, "--ttl must be above 0"),
    (["token", "--sub", "alice", "--claim", "role"], USAGE, "--claim expects KEY=VALUE"),
    # inspect and profile
    (["inspect", "--replay", "/nonexistent.jsonl"], USAGE, "cannot read the recording"),
    (["inspect", "--replay", "{tmp}/bad.jsonl"], USAGE, "not a tap event"),
    (["inspect", "ws://127.0.0.1:99999"], USAGE, "has no valid port"),
    (["inspect", "ws://127.0.0.1:1", "--duration", "1s"], FAILED, "cannot reach"),
    (["profile", "ws://127.0.0.1:1", "--duration", "0s", "--token", "x"], FAILED,
     "cannot read http://127.0.0.1:1/profile"),
    # bench: everything is checked before a server or a client starts
    (["bench", "--clients", "0"], USAGE, "--clients and --workers must be at least 1"),
    (["bench", *QUICK_BENCH, "--rate", "-5"], USAGE, "--rate must be above 0"),
    (["bench", *QUICK_BENCH, "--threshold", "p99<<5"], USAGE,
     "threshold 'p99<<5' is not METRIC<VALUE"),
    (["bench", *QUICK_BENCH, "--scenario", "nope"], USAGE, "unknown scenario 'nope'"),
    (["bench", *QUICK_BENCH, "--rate", "10", "--closed"], USAGE,
     "--rate and --closed exclude each other"),
    (["bench", *QUICK_BENCH, "--through", "moon"], USAGE, "no profile named 'moon'"),
    (["bench", *QUICK_BENCH, "--json", "/nonexistent/r.json"], USAGE,
     "--json /nonexistent/r.json: the directory /nonexistent does not exist"),
    (["bench", *QUICK_BENCH, "--plot", "{tmp}"], USAGE, "is a directory"),
    (["bench", "ws://127.0.0.1:99999", *QUICK_BENCH], USAGE, "has no valid port"),
    (["bench", "ws://127.0.0.1:1", *QUICK_BENCH, "--token", "t", "--jwt-secret", "s"], USAGE,
     "give --token (every client the same user) or --jwt-secret"),
    (["bench", "ws://127.0.0.1:1", *QUICK_BENCH], FAILED,
     "nothing completed: 2 of 2 connections failed: 2 connect (nothing accepted"),
]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture
def unparsable(tmp_path: Path) -> Path:
    (tmp_path / "bad.toml").write_text("x = [\n")
    (tmp_path / "bad.json").write_text("{not json\n")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    return tmp_path


@pytest.mark.parametrize(("args", "code", "message"), CASES,
                         ids=[" ".join(args[:3]) + f" -> {code}" for args, code, _ in CASES])
def test_careless_input_is_one_line_and_its_exit_code(
    env: dict[str, str], unparsable: Path, busy_port: int, args: list[str], code: int,
    message: str,
) -> None:
    def fill(text: str) -> str:
        return text.replace("{tmp}", str(unparsable)).replace("{busy}", str(busy_port))

    result = rtctl(*map(fill, args), env=env, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("rtctl: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert fill(message) in result.stderr
