"""The gateway's HTTP side, sans-I/O: what to answer to a request before any WebSocket exists.

Every transport driver hands :meth:`Front.answer` the request line's target
and the few headers that matter, and gets back either a :class:`Response` to
write (and close), or an :class:`Admission` to upgrade (RFC 6455 §4.2.2 allows
any non-101 answer). Routes on the game port:

``/healthz``   200 while the process runs;
``/readyz``    200 while the node takes players, else 503 with why (draining,
               starting, a failing readiness check such as Redis);
``/metrics``   the Prometheus text exposition;
``/profile``   admins only: the sampled stage timings (:mod:`rtctl.profiler`);
``/tap``       admins only: upgrade to a tap listener (:mod:`rtctl.protocol.tap`);
the endpoint   validate the JWT (401 with a JSON reason word), then the
               connection limits (429/503); refuse while draining (503).
Anything else is 404 naming the endpoint.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from rtctl.config import GatewayConfig
from rtctl.exceptions import AuthError, ConnectionRefused
from rtctl.gateway.auth import Authenticator, Identity
from rtctl.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from rtctl.gateway.registry import ConnectionRegistry
from rtctl.profiler.stages import PROFILE_PATH, QueueDepths, StageProfiler
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import TAP_PATH, AuthRefused, is_admin
from rtctl.protocol.upgrade import token_from_request
from rtctl.tap import Tap

__all__ = ["Admission", "Front", "Response", "UpgradeRequest"]

_JSON = "application/json"


class UpgradeRequest(NamedTuple):
    """What the gateway reads of an HTTP request: target, token carriers, peer."""

    target: str  # path and query, as on the request line
    authorization: str | None
    subprotocols: list[str]  # offered in Sec-WebSocket-Protocol
    remote: str | None


class Response(NamedTuple):
    """An HTTP answer (never 101); the driver adds ``Connection: close`` and closes."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def reason(self) -> str:
        return http.HTTPStatus(self.status).phrase


class Admission(NamedTuple):
    """Upgrade: a game connection, or (``listener``) an admin's tap stream."""

    identity: Identity
    listener: bool


def _response(status: int, body: bytes, content_type: str = _JSON,
              *extra: tuple[str, str]) -> Response:
    return Response(status, body, (("Content-Type", content_type),
                                   ("Content-Length", str(len(body))), *extra))


def _json(status: int, /, **fields: Any) -> Response:
    return _response(status, jsonrpc.dumps(fields))


class Front:
    """Answers the HTTP side of one gateway; every collaborator is passed in."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        authenticator: Authenticator,
        registry: ConnectionRegistry,
        metrics: GatewayMetrics,
        tap: Tap,
        profiler: StageProfiler,
        phase: Callable[[], str],
        readiness_failures: Callable[[], dict[str, str]],
    ) -> None:
        self._config = config
        self._auth = authenticator
        self._registry = registry
        self._metrics = metrics
        self._tap = tap
        self._profiler = profiler
        self._phase = phase  # "starting", "ready" or "draining"
        self._failures = readiness_failures

    def answer(self, request: UpgradeRequest) -> Response | Admission:
        """The answer to one request: a response to write, or an upgrade to perform."""
        url = urlsplit(request.target)
        path = url.path
        if path == "/healthz":
            return _json(200, status="ok")
        if path == "/readyz":
            return self._readyz()
        if path == "/metrics":
            return _response(200, self._metrics.render(), CONTENT_TYPE)
        if path == PROFILE_PATH:
            return self._profile(request, url.query)
        if path != self._config.path and path != TAP_PATH:
            return _json(404, error="not_found",
                         detail=f"the WebSocket endpoint is {self._config.path}")
        if self._phase() == "draining":
            return self._refuse(request, path, ConnectionRefused(
                503, "draining", "the gateway is shutting down"))
        try:
            identity = self._auth.authenticate(token_from_request(
                authorization=request.authorization, query=url.query,
                subprotocols=request.subprotocols))
        except AuthError as exc:
            return self._refuse(request, path, exc)
        if path == TAP_PATH:
            # A listener is not a game connection: no registry entry, no limits.
            if not is_admin(identity.claims):
                return self._refuse(request, path, ConnectionRefused(
                    403, "forbidden", "the tap needs a token with the claim role=admin"),
                    identity.user)
            return Admission(identity, listener=True)
        try:
            self._registry.check(identity.user)
        except ConnectionRefused as exc:
            return self._refuse(request, path, exc, identity.user)
        return Admission(identity, listener=False)

    def _readyz(self) -> Response:
        phase = self._phase()
        failing = self._failures() if phase == "ready" else {}
        if phase == "ready" and not failing:
            return _json(200, status="ready", connections=len(self._registry))
        if failing:
            return _json(503, status="unavailable", failing=failing)
        return _json(503, status=phase)

    def _refuse(self, request: UpgradeRequest, path: str, exc: AuthError | ConnectionRefused,
                user: str | None = None) -> Response:
        """Count, tap and answer a refused upgrade (401 carries RFC 6750 §3's header)."""
        self._metrics.refused[exc.reason] += 1
        if self._tap.active:
            self._tap.publish(AuthRefused(
                t_us=self._tap.clock_us(), remote=request.remote, path=path,
                status=exc.http_status, reason=exc.reason, user=user))
        if isinstance(exc, AuthError):
            return _response(401, jsonrpc.dumps({"error": "unauthorized", "reason": exc.reason,
                                                 "detail": exc.detail}), _JSON,
                             ("WWW-Authenticate", f'Bearer error="invalid_token", '
                                                  f'error_description="{exc.reason}"'))
        return _json(exc.http_status, error=exc.reason, detail=exc.detail)

    def _profile(self, request: UpgradeRequest, query: str) -> Response:
        """``GET /profile`` for admins: the stage table; ``?reset=1`` starts a new interval."""
        try:
            identity = self._auth.authenticate(token_from_request(
                authorization=request.authorization, query=query, subprotocols=[]))
        except AuthError as exc:
            return _json(401, error="unauthorized", reason=exc.reason, detail=exc.detail)
        if not is_admin(identity.claims):
            return _json(403, error="forbidden",
                         detail="the profile needs a token with the claim role=admin")
        outboxes = [q for conn in self._registry if (q := conn.transport.queued()) is not None]
        queues = QueueDepths(
            connections=len(self._registry), outboxes=len(outboxes),
            queued_messages=sum(q[0] for q in outboxes),
            queued_bytes=sum(q[1] for q in outboxes),
            max_queued_messages=max((q[0] for q in outboxes), default=0))
        params = query.split("&")
        return _json(200, **self._profiler.snapshot(
            queues, reset="reset=1" in params, cpu="cpu=1" in params))
