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
               connection limits (429/503); refuse while draining (503); a
               ``recover=`` recovery token names the session to resume.
Anything else is 404 naming the endpoint. A request without exactly one
``Host`` header is 400 whatever its path (RFC 9112 §3.2, was RFC 7230 §5.4),
and so is one with more than one ``Authorization`` header (RFC 9110 §5.3: the
field is no list, so which one is meant cannot be known). Every refusal of
the endpoint, ``/tap`` and ``/profile`` is counted by reason and tapped, and
every request to the endpoint by outcome (``ok``: upgraded, else the status).
"""

from __future__ import annotations

import dataclasses
import http
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from rtctl.config import GatewayConfig
from rtctl.exceptions import AuthError, ConnectionRefused
from rtctl.gateway.auth import Authenticator, Identity
from rtctl.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from rtctl.gateway.recovery import RecoveryTokens, ResumeRefused
from rtctl.gateway.registry import ConnectionRegistry
from rtctl.profiler.cpu import SamplerUnavailable
from rtctl.profiler.stages import PROFILE_PATH, QueueDepths, StageProfiler
from rtctl.protocol import jsonrpc
from rtctl.protocol.tap import TAP_PATH, AuthRefused, is_admin
from rtctl.protocol.upgrade import token_from_request
from rtctl.tap import Tap

__all__ = ["Admission", "Front", "Response", "UpgradeRequest"]

_JSON = "application/json"


class UpgradeRequest(NamedTuple):
    """What the gateway reads of an HTTP request: target, token carriers, peer, Host."""

    target: str  # path and query, as on the request line
    authorizations: Sequence[str]  # every Authorization header line
    subprotocols: list[str]  # offered in Sec-WebSocket-Protocol
    remote: str | None
    hosts: Sequence[str]  # every Host header line


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
        recovery: RecoveryTokens,
    ) -> None:
        self._config = config
        self._auth = authenticator
        self._recovery = recovery
        self._registry = registry
        self._metrics = metrics
        self._tap = tap
        self._profiler = profiler
        self._phase = phase  # "starting", "ready" or "draining"
        self._failures = readiness_failures

    def answer(self, request: UpgradeRequest) -> Response | Admission:
        """The answer to one request: a response to write, or an upgrade to perform."""
        answer = self._answer(request)
        if isinstance(answer, Response) and urlsplit(request.target).path == self._config.path:
            self._metrics.upgrades[str(answer.status)] += 1  # "ok" is counted once it opens
        return answer

    def ready(self) -> bool:
        """True while ``/readyz`` answers 200."""
        return self._phase() == "ready" and not self._failures()

    def _answer(self, request: UpgradeRequest) -> Response | Admission:
        if len(request.hosts) != 1:
            return _json(400, error="bad_request",
                         detail="an HTTP/1.1 request needs exactly one Host header")
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
            identity = self._authenticate(request, url.query, request.subprotocols)
        except (AuthError, ConnectionRefused) as exc:
            return self._refuse(request, path, exc)
        if path == TAP_PATH:
            # A listener is not a game connection: no registry entry, no limits.
            if not is_admin(identity.claims):
                return self._refuse(request, path, ConnectionRefused(
                    403, "forbidden", "the tap needs a token with the claim role=admin"),
                    identity.user)
            return Admission(identity, listener=True)
        identity = self._resumed(identity, url.query)
        try:
            self._registry.check(identity.user, replacing=identity.session)
        except ConnectionRefused as exc:
            return self._refuse(request, path, exc, identity.user)
        return Admission(identity, listener=False)

    def _resumed(self, identity: Identity, query: str) -> Identity:
        """``identity`` with the session its ``recover=`` token names, or why not."""
        token = next((value for name, value in parse_qsl(query) if name == "recover"), None)
        if token is None:
            return identity
        try:
            session = self._recovery.check(token, identity.user)
        except ResumeRefused as exc:
            self._metrics.resumes[exc.reason] += 1
            return dataclasses.replace(identity, resume_error=exc.reason)
        return dataclasses.replace(identity, session=session)

    def _readyz(self) -> Response:
        phase = self._phase()
        failing = self._failures() if phase == "ready" else {}
        if phase == "ready" and not failing:
            return _json(200, status="ready", connections=len(self._registry))
        if failing:
            return _json(503, status="unavailable", failing=failing)
        return _json(503, status=phase)

    def _authenticate(self, request: UpgradeRequest, query: str,
                      subprotocols: Sequence[str]) -> Identity:
        """Who the request's token names; AuthError, or ConnectionRefused (400) for two headers."""
        if len(request.authorizations) > 1:
            raise ConnectionRefused(400, "bad_request",
                                    "the request has more than one Authorization header")
        return self._auth.authenticate(token_from_request(
            authorization=request.authorizations[0] if request.authorizations else None,
            query=query, subprotocols=subprotocols))

    def _refuse(self, request: UpgradeRequest, path: str, exc: AuthError | ConnectionRefused,
                user: str | None = None) -> Response:
        """Count, tap and answer a refusal (401 carries RFC 6750 §3's header).

        A request that offered no token gets the challenge without an error
        code, as RFC 6750 §3.1 asks: it did not know a token was needed.
        """
        self._metrics.refused[exc.reason] += 1
        if self._tap.active:
            self._tap.publish(AuthRefused(
                t_us=self._tap.clock_us(), remote=request.remote, path=path,
                status=exc.http_status, reason=exc.reason, user=user))
        if isinstance(exc, AuthError):
            challenge = ("Bearer" if exc.reason == "missing" else
                         f'Bearer error="invalid_token", error_description="{exc.reason}"')
            return _response(401, jsonrpc.dumps({"error": "unauthorized", "reason": exc.reason,
                                                 "detail": exc.detail}), _JSON,
                             ("WWW-Authenticate", challenge))
        return _json(exc.http_status, error=exc.reason, detail=exc.detail)

    def _profile(self, request: UpgradeRequest, query: str) -> Response:
        """``GET /profile`` for admins: the stage table; ``?reset=1`` starts a new interval."""
        try:
            identity = self._authenticate(request, query, [])
        except (AuthError, ConnectionRefused) as exc:
            return self._refuse(request, PROFILE_PATH, exc)
        if not is_admin(identity.claims):
            return self._refuse(request, PROFILE_PATH, ConnectionRefused(
                403, "forbidden", "the profile needs a token with the claim role=admin"),
                identity.user)
        outboxes = [q for conn in self._registry if (q := conn.transport.queued()) is not None]
        queues = QueueDepths(
            connections=len(self._registry), outboxes=len(outboxes),
            queued_messages=sum(q[0] for q in outboxes),
            queued_bytes=sum(q[1] for q in outboxes),
            max_queued_messages=max((q[0] for q in outboxes), default=0))
        params = query.split("&")
        try:
            document = self._profiler.snapshot(queues, reset="reset=1" in params,
                                               cpu="cpu=1" in params)
        except SamplerUnavailable as exc:
            return _json(409, error="cpu_unavailable", detail=str(exc))
        return _json(200, **document)
