"""Tests for rtctl.config: the TOML config file and merging sections into GatewayConfig."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from rtctl.config import (
    DEFAULT_DRAIN,
    DEFAULT_HOST,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_USER,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PATH,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_PORT,
    GatewayConfig,
    Heartbeat,
    Limits,
    Routing,
    load_config_file,
    merge,
)
from rtctl.exceptions import ConfigError
from rtctl.gateway.auth import AuthConfig

KNOWN_SECTIONS = "[server], [auth], [limits], [heartbeat], [recovery], [routing]"

FULL = """\
[server]
host = "0.0.0.0"
port = 9000
path = "/game"
drain = "2s"

[auth]
secret = "s3cret"
public_key = "keys/pub.pem"
jwks = "keys/jwks.json"
audience = "game"
issuer = "https://auth.example"
leeway = "500ms"

[limits]
max_message_size = "64KiB"
max_connections = 500
max_connections_per_user = 3
max_inflight = 16

[heartbeat]
interval = "15s"
timeout = 10
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "rtctl.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    assert (DEFAULT_HOST, DEFAULT_PORT, DEFAULT_PATH) == ("127.0.0.1", 8765, "/ws")
    assert DEFAULT_MAX_MESSAGE_SIZE == 65536
    assert (DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, DEFAULT_DRAIN) == (15.0, 10.0, 5.0)
    config = GatewayConfig(auth=AuthConfig(secret="s"))
    assert config.limits == Limits(max_message_size=65536, max_connections=10_000,
                                   max_connections_per_user=8, max_inflight=64)
    assert config.heartbeat == Heartbeat(interval=15.0, timeout=10.0)
    assert (config.host, config.port, config.path, config.drain) == ("127.0.0.1", 8765,
                                                                      "/ws", 5.0)


def test_load_all_sections_converted(tmp_path: Path) -> None:
    loaded = load_config_file(_write(tmp_path, FULL))
    assert loaded == {
        "server": {"host": "0.0.0.0", "port": 9000, "path": "/game", "drain": 2.0},
        "auth": {
            "secret": "s3cret",
            "public_key": "keys/pub.pem",
            "jwks": "keys/jwks.json",
            "audience": "game",
            "issuer": "https://auth.example",
            "leeway": 0.5,
        },
        "limits": {
            "max_message_size": 65536,
            "max_connections": 500,
            "max_connections_per_user": 3,
            "max_inflight": 16,
        },
        "heartbeat": {"interval": 15.0, "timeout": 10.0},
    }
    assert type(loaded["heartbeat"]["timeout"]) is float
    assert type(loaded["limits"]["max_message_size"]) is int


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {}, id="empty-file"),
        pytest.param("# just a comment\n", {}, id="comment-only"),
        pytest.param("[limits]\n", {"limits": {}}, id="empty-section"),
        pytest.param('[heartbeat]\ninterval = "15s"\n', {"heartbeat": {"interval": 15.0}},
                     id="15s"),
        pytest.param('[heartbeat]\ntimeout = "250ms"\n', {"heartbeat": {"timeout": 0.25}},
                     id="250ms"),
        pytest.param("[heartbeat]\ninterval = 2.5\n", {"heartbeat": {"interval": 2.5}},
                     id="float-seconds"),
        pytest.param('[limits]\nmax_message_size = "64KiB"\n',
                     {"limits": {"max_message_size": 65536}}, id="64KiB"),
        pytest.param('[limits]\nmax_message_size = "1MB"\n',
                     {"limits": {"max_message_size": 1_000_000}}, id="1MB"),
        pytest.param("[limits]\nmax_message_size = 4096\n",
                     {"limits": {"max_message_size": 4096}}, id="bare-bytes"),
        pytest.param('[server]\nport = "8080"\n', {"server": {"port": 8080}}, id="port-string"),
        pytest.param('[server]\ndrain = "1m"\n', {"server": {"drain": 60.0}}, id="drain-1m"),
        pytest.param("server.port = 1234\n", {"server": {"port": 1234}}, id="dotted-key"),
    ],
)
def test_load_values(tmp_path: Path, text: str, expected: dict[str, Any]) -> None:
    assert load_config_file(_write(tmp_path, text)) == expected


def test_unknown_section(tmp_path: Path) -> None:
    path = _write(tmp_path, "[database]\nurl = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: unknown section [database] (known: {KNOWN_SECTIONS})"


def test_top_level_key_is_unknown_section(tmp_path: Path) -> None:
    path = _write(tmp_path, "port = 8765\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: unknown section [port] (known: {KNOWN_SECTIONS})"


def test_known_section_given_as_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "server = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: server must be a section [server], not a value"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[server]\nhots = 'x'\n",
                     "unknown key 'hots' in [server] (known: drain, host, path, port, transport)",
                     id="server-typo"),
        pytest.param("[limits]\nmax_message = 1\n",
                     "unknown key 'max_message' in [limits] (known: "
                     + ", ".join(sorted(field.name for field in fields(Limits))) + ")",
                     id="limits"),
        pytest.param("[heartbeat]\nping = '1s'\n",
                     "unknown key 'ping' in [heartbeat] (known: interval, timeout)",
                     id="heartbeat"),
        pytest.param("[auth]\nkey = 'x'\n",
                     "unknown key 'key' in [auth] "
                     "(known: audience, issuer, jwks, leeway, public_key, secret)",
                     id="auth"),
        pytest.param("[heartbeat]\nport = 1\n",
                     "unknown key 'port' in [heartbeat] (known: interval, timeout)",
                     id="key-of-another-section"),
    ],
)
def test_unknown_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[server\nport = 1\n", id="unclosed-header"),
        pytest.param("[server]\nport = \n", id="missing-value"),
        pytest.param("[server]\nport = 1\nport = 2\n", id="duplicate-key"),
        pytest.param("[server]\n[server]\n", id="duplicate-table"),
        pytest.param("[server]\nhost = 'unterminated\n", id="unterminated-string"),
    ],
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    message = str(caught.value)
    assert message.startswith(f"config file {path} is not valid TOML: ")
    assert len(message) > len(f"config file {path} is not valid TOML: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, b"[server]\nhost = '\xff\xfe'\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"config file {path} is not UTF-8 text (TOML must be)"


def test_utf8_is_read_as_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "[auth]\naudience = 'jeu-é'\n".encode())
    assert load_config_file(path) == {"auth": {"audience": "jeu-é"}}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"cannot read config file {path}: No such file or directory"


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_file(tmp_path)
    assert str(caught.value) == f"cannot read config file {tmp_path}: Is a directory"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[server]\nport = 'eighty'\n", "[server] port = 'eighty' is not valid",
                     id="port-word"),
        pytest.param("[server]\nport = [80]\n", "[server] port = [80] is not valid",
                     id="port-array"),
        pytest.param("[limits]\nmax_connections = 'lots'\n",
                     "[limits] max_connections = 'lots' is not valid", id="max-connections"),
        pytest.param("[limits]\nmax_inflight = {a = 1}\n",
                     "[limits] max_inflight = {'a': 1} is not valid", id="max-inflight-table"),
        # TOML has booleans and floats: neither is read as an integer it happens to convert to.
        pytest.param("[server]\nport = true\n", "[server] port = True is not valid",
                     id="port-bool"),
        pytest.param("[limits]\nmax_connections = 2.5\n",
                     "[limits] max_connections = 2.5 is not valid", id="max-connections-float"),
    ],
)
def test_bad_value_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "value_text"),
    [
        pytest.param("[heartbeat]\ninterval = 'soon'\n", "'soon'", id="duration-word"),
        pytest.param("[heartbeat]\ntimeout = '3 days'\n", "'3 days'", id="duration-unit"),
        pytest.param("[heartbeat]\ninterval = true\n", "True", id="duration-bool"),
        pytest.param("[heartbeat]\ninterval = [1]\n", "[1]", id="duration-array"),
        pytest.param("[limits]\nmax_message_size = 'huge'\n", "'huge'", id="size-word"),
        pytest.param("[limits]\nmax_message_size = 1.5\n", "1.5", id="size-float"),
        pytest.param("[server]\ndrain = {s = 1}\n", "{'s': 1}", id="drain-table"),
        pytest.param("[auth]\nleeway = '5 parsecs'\n", "'5 parsecs'", id="leeway"),
    ],
)
def test_bad_unit_value_is_config_error(tmp_path: Path, text: str, value_text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_file(_write(tmp_path, text))
    assert value_text in str(caught.value)


# ---------------------------------------------------------------------------
# merge
# ---------------------------------------------------------------------------

BASE = GatewayConfig(auth=AuthConfig(secret="s"))


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        pytest.param("server", {"host": "0.0.0.0", "port": None, "drain": 1.0},
                     GatewayConfig(auth=AuthConfig(secret="s"), host="0.0.0.0", drain=1.0),
                     id="server-partial"),
        pytest.param("server", {"host": "h", "port": 1, "path": "/p", "drain": 0.0},
                     GatewayConfig(auth=AuthConfig(secret="s"), host="h", port=1, path="/p",
                                   drain=0.0),
                     id="server-all-zero-drain-kept"),
        pytest.param("server", {"port": 0},
                     GatewayConfig(auth=AuthConfig(secret="s"), port=0),
                     id="port-zero-kept"),
        pytest.param("server", {"transport": "picows"},
                     GatewayConfig(auth=AuthConfig(secret="s"), transport="picows"),
                     id="transport"),
        pytest.param("limits", {"max_message_size": 1024, "max_connections": None},
                     GatewayConfig(auth=AuthConfig(secret="s"),
                                   limits=Limits(max_message_size=1024)),
                     id="limits-partial"),
        pytest.param("limits", {"max_connections": 5, "max_connections_per_user": 1,
                                "max_inflight": 2},
                     GatewayConfig(auth=AuthConfig(secret="s"),
                                   limits=Limits(max_connections=5, max_connections_per_user=1,
                                                 max_inflight=2)),
                     id="limits-three"),
        pytest.param("heartbeat", {"interval": 30.0, "timeout": None},
                     GatewayConfig(auth=AuthConfig(secret="s"),
                                   heartbeat=Heartbeat(interval=30.0)),
                     id="heartbeat-partial"),
        pytest.param("heartbeat", {"interval": 1.0, "timeout": 2.0},
                     GatewayConfig(auth=AuthConfig(secret="s"),
                                   heartbeat=Heartbeat(interval=1.0, timeout=2.0)),
                     id="heartbeat-all"),
    ],
)
def test_merge(section: str, values: dict[str, Any], expected: GatewayConfig) -> None:
    merged = merge(BASE, section, values)
    assert merged == expected
    assert GatewayConfig(auth=AuthConfig(secret="s")) == BASE  # frozen, not changed


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("server", {}),
        ("server", {"host": None, "port": None}),
        ("limits", {"max_connections": None}),
        ("heartbeat", {}),
        ("bogus", {}),
        ("bogus", {"x": None}),
    ],
)
def test_merge_nothing_returns_same_object(section: str, values: dict[str, Any]) -> None:
    assert merge(BASE, section, values) is BASE


def test_merge_keeps_other_sections() -> None:
    config = merge(BASE, "limits", {"max_inflight": 1})
    config = merge(config, "heartbeat", {"timeout": 3.0})
    config = merge(config, "server", {"port": 1})
    config = merge(config, "limits", {"max_connections": 2, "max_inflight": None})
    assert config.limits == Limits(max_inflight=1, max_connections=2)
    assert config.heartbeat == Heartbeat(timeout=3.0)
    assert config.port == 1
    assert config.host == DEFAULT_HOST
    assert config.auth == AuthConfig(secret="s")
    assert config.limits.max_connections_per_user == DEFAULT_MAX_CONNECTIONS_PER_USER
    assert config.limits.max_message_size == DEFAULT_MAX_MESSAGE_SIZE
    assert config.heartbeat.interval == DEFAULT_PING_INTERVAL
    assert config.drain == DEFAULT_DRAIN
    assert Limits().max_connections == DEFAULT_MAX_CONNECTIONS
    assert Limits().max_inflight == DEFAULT_MAX_INFLIGHT


def test_merge_unknown_section() -> None:
    with pytest.raises(ConfigError) as caught:
        merge(BASE, "bogus", {"x": 1})
    assert str(caught.value) == "unknown config section 'bogus'"


def test_loaded_file_merges_into_config(tmp_path: Path) -> None:
    loaded = load_config_file(_write(tmp_path, FULL))
    config = BASE
    for section in ("server", "limits", "heartbeat"):
        config = merge(config, section, loaded[section])
    assert config == GatewayConfig(
        auth=AuthConfig(secret="s"),
        host="0.0.0.0",
        port=9000,
        path="/game",
        drain=2.0,
        limits=Limits(max_message_size=65536, max_connections=500, max_connections_per_user=3,
                      max_inflight=16),
        heartbeat=Heartbeat(interval=15.0, timeout=10.0),
    )


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown transport 'turbo' \(choose websockets or"):
        GatewayConfig(auth=AuthConfig(secret="s"), transport="turbo")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"port": 99999}, "port 99999 is not a TCP port (0 to 65535; 0 picks",
                     id="port-high"),
        pytest.param({"port": -1}, "port -1 is not a TCP port", id="port-negative"),
        pytest.param({"drain": -1.0}, "drain must be zero or more seconds, got -1",
                     id="drain-negative"),
        pytest.param({"limits": Limits(max_connections=0)},
                     "limits max_connections must be above 0, got 0", id="no-connections"),
        pytest.param({"limits": Limits(max_connections_per_user=-2)},
                     "limits max_connections_per_user must be above 0, got -2", id="per-user"),
        pytest.param({"limits": Limits(max_message_size=0)},
                     "limits max_message_size must be above 0, got 0", id="message-size"),
        pytest.param({"heartbeat": Heartbeat(interval=0)},
                     "heartbeat interval must be above 0, got 0", id="interval-zero"),
        pytest.param({"heartbeat": Heartbeat(timeout=-5.0)},
                     "heartbeat timeout must be above 0, got -5", id="timeout-negative"),
    ],
)
def test_impossible_values_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GatewayConfig(auth=AuthConfig(secret="s"), **overrides)
    assert str(caught.value).startswith(message)


def test_an_impossible_value_from_the_file_is_refused_at_merge(tmp_path: Path) -> None:
    # A bare TOML number is seconds, so only the config can say a negative one is wrong.
    loaded = load_config_file(_write(tmp_path, "[heartbeat]\ninterval = -5\n"))
    with pytest.raises(ConfigError, match="heartbeat interval must be above 0, got -5"):
        merge(GatewayConfig(auth=AuthConfig(secret="s")), "heartbeat", loaded["heartbeat"])


@pytest.mark.parametrize("port", [0, 65535])
def test_port_edges_are_accepted(port: int) -> None:
    assert GatewayConfig(auth=AuthConfig(secret="s"), port=port).port == port


def test_the_recovery_section_reads_durations_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[recovery]\ngrace = "2s"\ntoken_ttl = "10m"\nhistory_size = 50\n'
                    'history_ttl = "30s"\nsecret = "shared"\n')
    config = merge(GatewayConfig(auth=AuthConfig(secret="s")), "recovery",
                   load_config_file(path)["recovery"])
    recovery = config.recovery
    assert (recovery.grace, recovery.token_ttl, recovery.secret) == (2.0, 600.0, "shared")
    assert (recovery.history.size, recovery.history.ttl, recovery.history.max_replay) == (
        50, 30.0, 50)
    assert "shared" not in repr(recovery)  # a secret never reaches a log line


@pytest.mark.parametrize(("values", "message"), [
    ({"grace": -1.0}, "recovery grace must be zero or more seconds, got -1"),
    ({"token_ttl": 0.0}, "recovery token_ttl must be above 0, got 0"),
    ({"history_size": 0}, "history size must be 1 or more messages, got 0"),
    ({"secret": ""}, "the recovery secret is empty"),
])
def test_impossible_recovery_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        merge(GatewayConfig(auth=AuthConfig(secret="s")), "recovery", values)
    assert str(caught.value) == message


def test_the_routing_section_reads_rates_windows_and_switches(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[routing]\nlanes = false\noutbound_rate = "32KiB/s"\n'
                    'outbound_burst = "64KiB"\ninbound_rate = "3000/min"\ninbound_burst = 5\n'
                    'batch_window = "16KiB"\nslow_consumer_grace = "20s"\n'
                    'compression = true\ncompression_level = 6\n'
                    'compression_threshold = "1KiB"\n')
    routing = merge(GatewayConfig(auth=AuthConfig(secret="s")), "routing",
                    load_config_file(path)["routing"]).routing
    assert routing == Routing(lanes=False, outbound_rate=32768.0, outbound_burst=65536,
                              inbound_rate=50.0, inbound_burst=5, batch_window=None,
                              batch_bytes=16384, slow_consumer_grace=20.0, compression=True,
                              compression_level=6, compression_threshold=1024)
    assert (routing.burst_bytes, routing.burst_calls) == (65536, 5)


def test_a_routing_burst_defaults_to_one_second_of_its_rate() -> None:
    routing = Routing(outbound_rate=1000.5, inbound_rate=0.5)
    assert (routing.burst_bytes, routing.burst_calls) == (1000, 1)
    assert (Routing().burst_bytes, Routing().burst_calls) == (None, None)


@pytest.mark.parametrize(("text", "message"), [
    ("lanes = 1", "[routing] lanes = 1 is not valid"),
    ('lanes = "yes"', "[routing] lanes = 'yes' is not valid"),
    ("batch_bytes = 10", "unknown key 'batch_bytes' in [routing]"),
])
def test_bad_routing_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(f"[routing]\n{text}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config_file(path)


@pytest.mark.parametrize(("values", "message"), [
    ({"outbound_rate": 0.0}, "routing outbound_rate must be above 0, got 0"),
    ({"inbound_rate": -1.0}, "routing inbound_rate must be above 0, got -1"),
    ({"batch_window": 0.0}, "routing batch_window must be above 0, got 0"),
    ({"outbound_burst": 100}, "an outbound burst needs an outbound rate (--outbound-rate)"),
    ({"inbound_burst": 3}, "an inbound burst needs an inbound rate (--inbound-rate)"),
    ({"slow_consumer_grace": -1.0},
     "routing slow_consumer_grace must be zero or more seconds, got -1"),
    ({"compression_level": 10}, "routing compression_level must be 0 to 9, got 10"),
    ({"compression_threshold": -1},
     "routing compression_threshold must be zero or more bytes, got -1"),
])
def test_impossible_routing_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        merge(GatewayConfig(auth=AuthConfig(secret="s")), "routing", values)
    assert str(caught.value) == message


def test_compression_needs_the_websockets_transport() -> None:
    with pytest.raises(ConfigError, match="permessage-deflate needs the websockets transport"):
        GatewayConfig(auth=AuthConfig(secret="s"), transport="picows",
                      routing=Routing(compression=True))


def test_a_batch_must_fit_in_one_message() -> None:
    auth = AuthConfig(secret="s")
    with pytest.raises(ConfigError) as caught:
        GatewayConfig(auth=auth, routing=Routing(batch_bytes=2**30))
    assert str(caught.value) == (
        "routing batch_bytes (1073741824) is above limits max_message_size (65536): a batch "
        "goes as one message, which clients take only up to their own limit")
    GatewayConfig(auth=auth, routing=Routing(batch_bytes=65536))  # a full message is fine
    GatewayConfig(auth=auth, limits=Limits(max_message_size=2**20),
                  routing=Routing(batch_bytes=2**20))
