"""Recovery tokens: how a client that reconnects asks for its old session back.

``session.info`` hands each connection a token that names its session (the
connection id) and its user, signed by the gateway and expiring. A client that
reconnects puts it in the upgrade's query (``?recover=TOKEN``) beside its usual
JWT; the gateway then gives the new connection the old session's id, on any
node that shares the key (Colyseus' reconnection token, Socket.IO's
connection state recovery). A token that fails any check is not a refusal:
the connection opens with a new session and ``session.info`` says why
(``resume_error``), so a client never loops on a stale token.

Format: ``base64url(JSON payload) "." base64url(HMAC-SHA256(key, payload))``
(the shape of a JWS compact serialisation, RFC 7515 §7.1, without the header:
only this gateway reads it). The key is the ``--recovery-secret`` if one is
given, else derived from the JWT secret (HMAC with a label of its own, so a
recovery token can never pass for a JWT nor the reverse), else random per
process -- then only the node that issued a token honours it, which the
gateway says at start when it has cluster backends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from typing import Literal, TypeAlias

from rtctl.protocol import jsonrpc

__all__ = ["RecoveryTokens", "ResumeError", "ResumeRefused", "recovery_key"]

ResumeError: TypeAlias = Literal["expired", "invalid", "wrong_user"]
_LABEL = b"rtctl recovery token v1"


class ResumeRefused(Exception):
    """A token the gateway will not honour, and the one word that says why."""

    def __init__(self, reason: ResumeError) -> None:
        super().__init__(reason)
        self.reason: ResumeError = reason


def recovery_key(secret: str | None, jwt_secret: str | None) -> tuple[bytes, bool]:
    """The signing key, and whether other nodes can share it (False: random, this node's)."""
    source = secret if secret is not None else jwt_secret
    if source is None:
        return os.urandom(32), False
    return hmac.new(source.encode(), _LABEL, hashlib.sha256).digest(), True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RecoveryTokens:
    """Issues and checks tokens with one key, on the gateway's clock."""

    def __init__(self, key: bytes, *, ttl: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.ttl = ttl
        self._clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, session: str, user: str) -> tuple[str, float]:
        """A token for ``session`` of ``user``, and when it expires (Unix seconds)."""
        expires = round(self._clock() + self.ttl, 3)
        payload = _b64(jsonrpc.dumps({"s": session, "u": user, "e": expires}))
        return f"{payload}.{self._sign(payload)}", expires

    def check(self, token: str, user: str) -> str:
        """The session ``token`` names for ``user``; :class:`ResumeRefused` if none."""
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload) if payload.isascii() else ""):
            raise ResumeRefused("invalid")
        try:
            claims = jsonrpc.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            raise ResumeRefused("invalid") from None  # signed by us: a bug, not an attack
        session, owner, expires = claims.get("s"), claims.get("u"), claims.get("e")
        if not isinstance(session, str) or not isinstance(expires, int | float):
            raise ResumeRefused("invalid")
        if owner != user:
            raise ResumeRefused("wrong_user")
        if expires <= self._clock():
            raise ResumeRefused("expired")
        return session
