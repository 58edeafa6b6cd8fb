"""The HTTP side, sans-I/O: what the gateway answers before any WebSocket exists."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jwt
import orjson
import pytest

from rtctl.config import GatewayConfig, Limits
from rtctl.gateway.auth import AuthConfig, Authenticator, Identity
from rtctl.gateway.connection import Connection, ConnectionState
from rtctl.gateway.http import Admission, Front, Response, UpgradeRequest
from rtctl.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from rtctl.gateway.recovery import RecoveryTokens
from rtctl.gateway.registry import ConnectionRegistry
from rtctl.profiler.stages import StageProfiler
from rtctl.protocol.tap import AuthRefused, Subscribed
from rtctl.tap import Tap
from tests.conftest import SECRET, make_token

ALICE = make_token("alice")
ADMIN = make_token("root", role="admin")
WRONG_KEY = jwt.encode({"sub": "alice"}, "another-secret-that-is-at-least-32-bytes",
                       algorithm="HS256")


class FakeTransport:
    def __init__(self, queue: tuple[int, int] | None = None) -> None:
        self.queue = queue

    def send(self, data: bytes, binary: bool = False) -> bool:
        return True

    def close(self, code: int, reason: str) -> None:
        pass

    def queued(self) -> tuple[int, int] | None:
        return self.queue


@dataclass
class Harness:
    front: Front
    registry: ConnectionRegistry
    metrics: GatewayMetrics
    tap: Tap
    profiler: StageProfiler
    phase: list[str] = field(default_factory=lambda: ["ready"])
    failures: dict[str, str] = field(default_factory=dict)

    def answer(self, target: str, authorization: str | None = None,
               subprotocols: list[str] | None = None,
               remote: str | None = "10.0.0.7:5555",
               hosts: tuple[str, ...] = ("gateway.example",),
               authorizations: tuple[str, ...] | None = None) -> Response | Admission:
        """One request; ``authorizations`` gives every Authorization line when not one."""
        if authorizations is None:
            authorizations = () if authorization is None else (authorization,)
        return self.front.answer(UpgradeRequest(target, authorizations, subprotocols or [],
                                                remote, hosts))

    def register(self, user: str, n: int = 1, queue: tuple[int, int] | None = None) -> None:
        identity = Identity(user=user, claims=MappingProxyType({"sub": user}), expires_at=None)
        conn = Connection(id=f"{user}-{n}", identity=identity, remote_address=None,
                          local_address=None, connected_at=0.0, subprotocol=None,
                          transport=FakeTransport(queue))
        self.registry.add(conn)
        conn.transition(ConnectionState.OPEN)


def harness(limits: Limits | None = None) -> Harness:
    config = GatewayConfig(auth=AuthConfig(secret=SECRET), port=0, limits=limits or Limits())
    registry = ConnectionRegistry(config.limits)
    metrics = GatewayMetrics({"sys.echo"}, lambda: len(registry))
    tap = Tap(clock_us=lambda: 42)
    profiler = StageProfiler()
    phase: list[str] = ["ready"]
    failures: dict[str, str] = {}
    front = Front(config, authenticator=Authenticator(config.auth), registry=registry,
                  metrics=metrics, tap=tap, profiler=profiler, phase=lambda: phase[0],
                  readiness_failures=lambda: failures,
                  recovery=RecoveryTokens(b"k" * 32, ttl=60))
    return Harness(front, registry, metrics, tap, profiler, phase, failures)


def body(response: Response | Admission) -> Any:
    assert isinstance(response, Response), f"expected a response, got {response!r}"
    headers = dict(response.headers)
    assert headers["Content-Length"] == str(len(response.body))
    return orjson.loads(response.body)


def header(response: Response, name: str) -> str | None:
    return dict(response.headers).get(name)


# ---------------------------------------------------------------------------
# Health, readiness, metrics, 404
# ---------------------------------------------------------------------------


def test_healthz() -> None:
    h = harness()
    h.phase[0] = "draining"  # alive even while draining
    response = h.answer("/healthz")
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (200, "OK")
    assert header(response, "Content-Type") == "application/json"
    assert body(response) == {"status": "ok"}


@pytest.mark.parametrize(
    ("phase", "failures", "status", "expected"),
    [
        pytest.param("ready", {}, 200, {"status": "ready", "connections": 1}, id="ready"),
        pytest.param("starting", {}, 503, {"status": "starting"}, id="starting"),
        pytest.param("draining", {}, 503, {"status": "draining"}, id="draining"),
        pytest.param("ready", {"redis": "connection refused"}, 503,
                     {"status": "unavailable", "failing": {"redis": "connection refused"}},
                     id="unavailable"),
        pytest.param("starting", {"redis": "connection refused"}, 503, {"status": "starting"},
                     id="starting-wins-over-checks"),
        pytest.param("draining", {"nats": "down"}, 503, {"status": "draining"},
                     id="draining-wins-over-checks"),
    ],
)
def test_readyz(phase: str, failures: dict[str, str], status: int,
                expected: dict[str, Any]) -> None:
    h = harness()
    h.register("bob")
    h.phase[0] = phase
    h.failures.update(failures)
    response = h.answer("/readyz")
    assert isinstance(response, Response)
    assert response.status == status
    assert body(response) == expected


def test_metrics_are_the_prometheus_text() -> None:
    h = harness()
    h.metrics.messages_in = 7
    response = h.answer("/metrics?ignored=1")
    assert isinstance(response, Response)
    assert response.status == 200
    assert header(response, "Content-Type") == CONTENT_TYPE
    assert CONTENT_TYPE.startswith("text/plain")
    assert header(response, "Content-Length") == str(len(response.body))
    assert b"rtctl_messages_received_total 7.0" in response.body


@pytest.mark.parametrize("target", ["/", "/wss", "/ws/", "/favicon.ico", "/healthz/x"])
def test_unknown_path_is_404_naming_the_endpoint(target: str) -> None:
    response = harness().answer(target, f"Bearer {ALICE}")
    assert isinstance(response, Response)
    assert response.status == 404
    assert body(response) == {"error": "not_found", "detail": "the WebSocket endpoint is /ws"}


# ---------------------------------------------------------------------------
# The endpoint: tokens
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "authorization", "subprotocols"),
    [
        pytest.param("/ws", f"Bearer {ALICE}", [], id="bearer-header"),
        pytest.param("/ws", f"bearer   {ALICE}  ", [], id="bearer-header-any-case"),
        pytest.param(f"/ws?token={ALICE}", None, [], id="query"),
        pytest.param(f"/ws?room=1&token={ALICE}", None, ["rtctl.v1"], id="query-among-others"),
        pytest.param("/ws", None, ["rtctl.v1", f"rtctl.bearer.{ALICE}"], id="subprotocol"),
        pytest.param(f"/ws?token={ALICE}", "Basic dXNlcjpwdw==", [], id="basic-is-not-bearer"),
    ],
)
def test_a_token_in_any_carrier_is_admitted(target: str, authorization: str | None,
                                            subprotocols: list[str]) -> None:
    h = harness()
    admission = h.answer(target, authorization, subprotocols)
    assert isinstance(admission, Admission)
    assert admission.listener is False
    assert admission.identity.user == "alice"
    assert admission.identity.claims["sub"] == "alice"
    assert admission.identity.expires_at is not None
    assert h.metrics.refused == Counter()


@pytest.mark.parametrize(
    ("target", "authorization", "subprotocols", "reason"),
    [
        pytest.param("/ws", None, [], "missing", id="none"),
        pytest.param("/ws?token=", "Bearer ", ["rtctl.bearer."], "missing", id="empty-carriers"),
        pytest.param("/ws", None, ["rtctl.v1"], "missing", id="only-the-protocol"),
        pytest.param("/ws", "Bearer not-a-jwt", [], "malformed", id="malformed"),
        pytest.param("/ws", f"Bearer {WRONG_KEY}", [], "bad_signature", id="wrong-key"),
        pytest.param(f"/ws?token={WRONG_KEY}", None, [], "bad_signature", id="wrong-key-query"),
        pytest.param("/tap", None, [], "missing", id="tap-none"),
    ],
)
def test_no_or_bad_token_is_401(target: str, authorization: str | None, subprotocols: list[str],
                                reason: str) -> None:
    h = harness()
    subscription = h.tap.subscribe()
    response = h.answer(target, authorization, subprotocols)
    assert isinstance(response, Response)
    assert response.status == 401
    document = body(response)
    assert document["error"] == "unauthorized"
    assert document["reason"] == reason
    assert document["detail"]
    challenge = header(response, "WWW-Authenticate")
    assert challenge is not None
    if reason == "missing":  # no credentials presented: no error code (RFC 6750 §3.1)
        assert challenge == "Bearer"
    else:
        assert challenge.startswith("Bearer ")  # RFC 6750 §3
        assert 'error="invalid_token"' in challenge
        assert f'error_description="{reason}"' in challenge
    assert "eyJ" not in response.body.decode() + challenge  # never quotes a token
    assert h.metrics.refused == Counter({reason: 1})
    events = subscription.take()
    assert events[1:] == [AuthRefused(t_us=42, remote="10.0.0.7:5555", path=target.split("?")[0],
                                      status=401, reason=reason, user=None)]


# ---------------------------------------------------------------------------
# The endpoint: draining and limits
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "authorization"),
    [pytest.param("/ws", f"Bearer {ALICE}", id="endpoint"),
     pytest.param("/ws", None, id="endpoint-no-token"),
     pytest.param("/tap", f"Bearer {ADMIN}", id="tap")],
)
def test_draining_refuses_upgrades(target: str, authorization: str | None) -> None:
    h = harness()
    h.phase[0] = "draining"
    subscription = h.tap.subscribe()
    response = h.answer(target, authorization, remote=None)
    assert isinstance(response, Response)
    assert response.status == 503
    assert body(response) == {"error": "draining", "detail": "the gateway is shutting down"}
    assert header(response, "WWW-Authenticate") is None
    assert h.metrics.refused == Counter({"draining": 1})
    subscribed, refused = subscription.take()
    assert isinstance(subscribed, Subscribed)
    assert refused == AuthRefused(t_us=42, remote=None, path=target, status=503,
                                  reason="draining", user=None)


@pytest.mark.parametrize(
    ("limits", "registered", "user", "status", "reason"),
    [
        pytest.param(Limits(max_connections_per_user=1), ["alice"], "alice", 429,
                     "too_many_connections_for_user", id="per-user"),
        pytest.param(Limits(max_connections_per_user=1), ["bob"], "alice", None, None,
                     id="per-user-others-fine"),
        pytest.param(Limits(max_connections_per_user=2), ["alice"], "alice", None, None,
                     id="per-user-under"),
        pytest.param(Limits(max_connections=1), ["bob"], "alice", 503, "too_many_connections",
                     id="total"),
        pytest.param(Limits(max_connections=2, max_connections_per_user=1), ["alice", "bob"],
                     "alice", 503, "too_many_connections", id="total-checked-first"),
        pytest.param(Limits(max_connections=2), ["bob"], "alice", None, None, id="total-under"),
    ],
)
def test_connection_limits(limits: Limits, registered: list[str], user: str,
                           status: int | None, reason: str | None) -> None:
    h = harness(limits)
    for n, who in enumerate(registered):
        h.register(who, n)
    subscription = h.tap.subscribe()
    answer = h.answer("/ws", f"Bearer {make_token(user)}")
    if status is None:
        assert isinstance(answer, Admission)
        assert answer.identity.user == user
        assert h.metrics.refused == Counter()
        return
    assert isinstance(answer, Response)
    assert answer.status == status
    document = body(answer)
    assert document["error"] == reason
    assert document["detail"]
    assert h.metrics.refused == Counter({reason: 1})
    assert subscription.take()[1:] == [AuthRefused(t_us=42, remote="10.0.0.7:5555", path="/ws",
                                                   status=status, reason=str(reason), user=user)]


def test_nobody_listening_publishes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness()
    h.phase[0] = "draining"

    def no_publish(event: Any) -> None:
        raise AssertionError("published with nobody listening")

    monkeypatch.setattr(h.tap, "publish", no_publish)
    response = h.answer("/ws", f"Bearer {ALICE}")
    assert isinstance(response, Response)
    assert response.status == 503
    assert h.metrics.refused == Counter({"draining": 1})  # counted all the same


# ---------------------------------------------------------------------------
# Admin routes: /tap and /profile
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"),
    [pytest.param(ALICE, 403, id="player"),
     pytest.param(make_token("eve", role="administrator"), 403, id="almost-admin"),
     pytest.param(ADMIN, None, id="admin")],
)
def test_tap_needs_an_admin(token: str, status: int | None) -> None:
    h = harness(Limits(max_connections=1, max_connections_per_user=1))
    h.register("root")  # a listener is no game connection: limits do not apply
    subscription = h.tap.subscribe()
    answer = h.answer("/tap", None, ["rtctl.v1", f"rtctl.bearer.{token}"])
    if status is None:
        assert isinstance(answer, Admission)
        assert answer.listener is True
        assert answer.identity.user == "root"
        assert h.metrics.refused == Counter()
        return
    assert isinstance(answer, Response)
    assert answer.status == status
    assert body(answer)["error"] == "forbidden"
    assert "role=admin" in body(answer)["detail"]
    assert h.metrics.refused == Counter({"forbidden": 1})
    [event] = subscription.take()[1:]
    assert isinstance(event, AuthRefused)
    assert (event.path, event.status, event.reason) == ("/tap", 403, "forbidden")
    assert event.user is not None


@pytest.mark.parametrize(
    ("target", "authorization", "status", "error"),
    [
        pytest.param("/profile", None, 401, "unauthorized", id="no-token"),
        pytest.param("/profile", "Bearer not-a-jwt", 401, "unauthorized", id="bad-token"),
        pytest.param("/profile", f"Bearer {ALICE}", 403, "forbidden", id="player"),
        pytest.param(f"/profile?token={ALICE}", None, 403, "forbidden", id="player-query"),
        pytest.param("/profile", f"Bearer {ADMIN}", 200, None, id="admin"),
        pytest.param(f"/profile?token={ADMIN}", None, 200, None, id="admin-query"),
    ],
)
def test_profile_is_for_admins(target: str, authorization: str | None, status: int,
                               error: str | None) -> None:
    response = harness().answer(target, authorization)
    assert isinstance(response, Response)
    assert response.status == status
    document = body(response)
    if error is None:
        assert "methods" in document
        assert "queues" in document
    else:
        assert document["error"] == error


def test_profile_reports_the_outboxes_and_resets() -> None:
    h = harness()
    h.register("a", queue=(3, 300))
    h.register("b", queue=None)  # never queued anything: not an outbox
    h.register("c", queue=(5, 50))
    h.profiler.record("sys.echo", 1_000, 2_000, 3_000, 4_000)
    document = body(h.answer("/profile?reset=1", f"Bearer {ADMIN}"))
    assert document["every"] == h.profiler.every
    assert document["sampled"] == 1
    assert document["methods"]["sys.echo"]["write"]["count"] == 1
    assert document["queues"] == {"connections": 3, "outboxes": 2, "queued_messages": 8,
                                  "queued_bytes": 350, "max_queued_messages": 5}
    assert body(h.answer("/profile", f"Bearer {ADMIN}"))["sampled"] == 0  # reset took


def test_profile_refusals_are_counted_and_tapped_like_the_others() -> None:
    h = harness()
    subscription = h.tap.subscribe()
    no_token = h.answer("/profile")
    h.answer("/profile", "Bearer not-a-jwt")
    h.answer("/profile", f"Bearer {ALICE}")
    h.answer("/profile", f"Bearer {ADMIN}")
    assert h.metrics.refused == Counter({"missing": 1, "malformed": 1, "forbidden": 1})
    assert [(e.path, e.status, e.reason) for e in subscription.take()[1:]] == [
        ("/profile", 401, "missing"), ("/profile", 401, "malformed"),
        ("/profile", 403, "forbidden")]
    assert isinstance(no_token, Response)
    assert header(no_token, "WWW-Authenticate") == "Bearer"


# ---------------------------------------------------------------------------
# Malformed requests: Host (RFC 9112 §3.2) and Authorization (RFC 9110 §5.3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/ws", "/tap", "/healthz", "/profile", "/nowhere"])
@pytest.mark.parametrize("hosts", [(), ("a.example", "b.example")], ids=["none", "two"])
def test_a_request_without_exactly_one_host_is_400(target: str, hosts: tuple[str, ...]) -> None:
    response = harness().answer(target, f"Bearer {ADMIN}", hosts=hosts)
    assert isinstance(response, Response)
    assert response.status == 400
    assert body(response) == {"error": "bad_request",
                              "detail": "an HTTP/1.1 request needs exactly one Host header"}


@pytest.mark.parametrize("target", ["/ws", "/tap", "/profile"])
def test_two_authorization_headers_are_400_whatever_they_hold(target: str) -> None:
    h = harness()
    subscription = h.tap.subscribe()
    response = h.answer(target, authorizations=(f"Bearer {ADMIN}", f"Bearer {ADMIN}"))
    assert isinstance(response, Response)
    assert response.status == 400
    assert body(response) == {"error": "bad_request",
                              "detail": "the request has more than one Authorization header"}
    assert h.metrics.refused == Counter({"bad_request": 1})
    [event] = subscription.take()[1:]
    assert (event.path, event.status, event.reason) == (target, 400, "bad_request")
