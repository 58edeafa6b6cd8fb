"""The command line as a user meets it: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from rtctl import __version__ as rtctl_version
from rtctl.protocol import jsonrpc
from rtctl.protocol.codes import CloseCode
from tests.conftest import SECRET, TIMING, client, rpc
from tests.gateway.test_server import closed_with

ROOT = Path(__file__).resolve().parents[2]


def rtctl(*args: str, env: dict[str, str] | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtctl", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout * TIMING)


class Served:
    """A ``rtctl serve`` subprocess and the base URL it printed."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rtctl", "serve", "--port", "0", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.banner = [self.proc.stdout.readline() for _ in range(4)]
        assert self.banner[0].startswith("rtctl gateway listening on "), self.banner
        self.base_url = self.banner[0].split()[-1].removesuffix("/ws")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=15 * TIMING)
        return out


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = dict(os.environ, RTCTL_STATE_DIR=str(tmp_path / "state"))
    environment.pop("RTCTL_JWT_SECRET", None)
    environment.pop("RTCTL_TOKEN", None)
    return environment


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[Served]:
    server = Served("--jwt-secret", SECRET, "--drain", "0", env=env)
    yield server
    if server.proc.poll() is None:
        server.stop()


def test_flags_override_the_config_file_key(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "rtctl.toml"
    config.write_text('[auth]\nsecret = "from-the-file-from-the-file-from-the"\n'
                      '[limits]\nmax_connections = 5\n')
    server = Served("--config", str(config), "--jwt-secret", SECRET, "--drain", "0", env=env)
    try:
        token = rtctl("token", "--sub", "alice", "--jwt-secret", SECRET, env=env).stdout.strip()
        result = rtctl("call", server.base_url, "sys.ping", "--token", token, env=env)
        assert result.returncode == 0, result.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("source", ["--jwt-public-key", "--jwks"])
def test_serve_verifies_es256_tokens_from_a_pem_or_a_jwks_file(
    env: dict[str, str], tmp_path: Path, source: str
) -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    if source == "--jwt-public-key":
        key_file = tmp_path / "key.pem"
        key_file.write_bytes(private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
        key_file = tmp_path / "jwks.json"
        key_file.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256"}]}))
    token = jwt.encode({"sub": "eve", "exp": int(time.time()) + 600}, private_key,
                       algorithm="ES256", headers={"kid": "k1"})
    server = Served(source, str(key_file), "--drain", "0", env=env)
    try:
        ok = rtctl("call", server.base_url, "session.info", "--token", token, env=env)
        assert ok.returncode == 0, ok.stderr
        assert jsonrpc.loads(ok.stdout)["user"] == "eve"
        forged = jwt.encode({"sub": "eve"}, "a-shared-secret-of-thirty-two-bytes!",
                            algorithm="HS256")
        refused = rtctl("call", server.base_url, "sys.ping", "--token", forged, env=env)
        assert refused.returncode == 1
        assert "bad_algorithm" in refused.stderr
    finally:
        server.stop()


def test_token_prints_only_a_token_with_claims(env: dict[str, str]) -> None:
    result = rtctl("token", "--sub", "alice", "--ttl", "2m", "--claim", "role=admin",
                   "--claim", "level=7", "--jwt-secret", SECRET, env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["level"]) == ("alice", "admin", 7)
    assert claims["exp"] - claims["iat"] == 120


def test_dev_mode_serve_and_token_share_a_secret(env: dict[str, str]) -> None:
    server = Served("--drain", "0", env=env)
    try:
        assert "DEV MODE" in server.banner[1]
        token = rtctl("token", "--sub", "alice", env=env).stdout.strip()
        result = rtctl("call", server.base_url, "session.info", "--token", token, env=env)
        assert result.returncode == 0, result.stderr
        assert jsonrpc.loads(result.stdout)["user"] == "alice"
        # With no --token at all, `rtctl call` mints a dev token itself.
        assert rtctl("call", server.base_url, "sys.ping", env=env).returncode == 0
    finally:
        server.stop()


def test_call_prints_results_and_exits_by_outcome(served: Served, env: dict[str, str]) -> None:
    token = rtctl("token", "--sub", "alice", "--jwt-secret", SECRET, env=env).stdout.strip()
    ok = rtctl("call", served.base_url, "sys.echo", '{"hello": [1, 2]}', "--token", token,
               env=env)
    assert (ok.returncode, jsonrpc.loads(ok.stdout)) == (0, {"hello": [1, 2]})

    missing = rtctl("call", served.base_url, "no.such", "--token", token, env=env)
    assert missing.returncode == 3
    assert jsonrpc.loads(missing.stderr)["code"] == -32601

    refused = rtctl("call", served.base_url, "sys.ping", "--token", "nonsense", env=env)
    assert refused.returncode == 1
    assert "malformed" in refused.stderr

    bad_params = rtctl("call", served.base_url, "sys.echo", "{oops", "--token", token, env=env)
    assert bad_params.returncode == 2  # bad usage, as `rtctl call --help` says
    assert "PARAMS_JSON is not JSON" in bad_params.stderr

    unreachable = rtctl("call", "ws://127.0.0.1:1", "sys.ping", "--token", token, env=env)
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr


async def test_sigterm_closes_open_connections_1001_and_exits_0(served: Served) -> None:
    async with client(served.base_url + "/ws") as ws:
        assert "result" in await rpc(ws, "sys.ping")
        served.proc.send_signal(signal.SIGTERM)
        code, _ = await closed_with(ws)
    assert code == CloseCode.GOING_AWAY
    out, _ = await asyncio.to_thread(served.proc.communicate, timeout=15 * TIMING)
    assert served.proc.returncode == 0
    assert "draining" in out
    assert "stopped" in out


def test_help_teaches(env: dict[str, str]) -> None:
    result = rtctl("serve", "--help", env=env)
    assert result.returncode == 0
    for flag in ("--router", "--jwt-secret", "--jwks", "--config", "--max-message-size"):
        assert flag in result.stdout
    said = " ".join(result.stdout.replace("│", " ").split())
    assert "Accept permessage-deflate when a client offers it" in said  # the client offers


def test_version(env: dict[str, str]) -> None:
    result = rtctl("--version", env=env)
    assert (result.returncode, result.stdout) == (0, f"rtctl {rtctl_version}\n")


@pytest.mark.parametrize("command", [[], ["serve"], ["call"], ["bench"], ["simulate"],
                                     ["inspect"], ["token"]])
def test_help_states_the_exit_codes(env: dict[str, str], command: list[str]) -> None:
    said = " ".join(rtctl(*command, "--help", env=env).stdout.replace("│", " ").split())
    assert "Exit codes:" in said
    assert "2 bad usage" in said


def test_serve_hosts_the_room_types_it_is_given(env: dict[str, str]) -> None:
    server = Served("--jwt-secret", SECRET, "--drain", "0", "--room-type", "drift", env=env)
    try:
        assert server.proc.stdout is not None
        banner = [*server.banner, server.proc.stdout.readline()]  # the rooms line is fifth
        assert "  rooms:   drift (DriftRoom, 20 Hz)\n" in banner, banner
        token = rtctl("token", "--sub", "alice", "--jwt-secret", SECRET, env=env).stdout.strip()
        schema = rtctl("call", server.base_url, "state.schema", '{"room": "drift:1"}',
                       "--token", token, env=env)
        assert schema.returncode == 0, schema.stderr
        assert json.loads(schema.stdout)["root"] == "Arena"
        other = rtctl("call", server.base_url, "state.schema", '{"room": "lobby"}',
                      "--token", token, env=env)
        assert other.returncode == 3
        assert "'lobby' is not a stateful room" in other.stderr
    finally:
        server.stop()


def test_a_command_loads_only_its_own_module() -> None:
    # `rtctl token` must not pay for bench's imports: rtctl/cli loads a command's module lazily
    probe = ("import sys\nfrom rtctl.cli import app\n"
             "app(['token', '--sub', 'a'], standalone_mode=False)\n"
             "print(*(name in sys.modules for name in ['rtctl.bench', 'rtctl.cli.bench', "
             "'rtctl.cli.token']))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=True)
    assert done.stdout.splitlines()[-1] == "False False True"  # after the token it printed
