"""Signing JWTs (RFC 7519) with an HS256 shared secret, for development, tests and load.

``rtctl token``, the bench's per-client tokens and the TUI demo mint their
tokens here. Verifying them is the gateway's job (:mod:`rtctl.gateway.auth`);
this module lives outside the gateway so that tools which only *make* tokens,
such as :mod:`rtctl.bench`, never import it.

Only HS256 (RFC 7518 §3.2) is offered: a gateway that verifies with a public
key or a JWKS trusts tokens from the holder of the private key, not from rtctl.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt

from rtctl.exceptions import ConfigError

__all__ = ["issue_token"]

_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


def issue_token(
    secret: str,
    *,
    sub: str,
    ttl: float | None,
    claims: Mapping[str, Any] = _NO_CLAIMS,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """Sign an HS256 token for ``sub`` valid ``ttl`` seconds (forever when None).

    ``iat`` is ``now`` (the wall clock when None) and ``exp`` is ``iat + ttl``,
    both whole seconds (RFC 7519 §4.1.6, §4.1.4); ``aud`` and ``iss`` (§4.1.3,
    §4.1.1) are set when given. ``claims`` are added last, so they may override
    the registered ones. Raises :class:`ConfigError` for an empty secret or
    subject, or a lifetime that is not a positive number of seconds.
    """
    if not secret:
        raise ConfigError("a token needs a non-empty signing secret")
    if not isinstance(sub, str) or not sub:
        raise ConfigError("a token needs a non-empty subject (sub)")
    if ttl is not None and not (math.isfinite(ttl) and ttl > 0):
        raise ConfigError(f"token lifetime must be a positive number of seconds, got {ttl!r}")
    iat = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"sub": sub, "iat": iat}
    if ttl is not None:
        payload["exp"] = int(iat + ttl)
    if audience is not None:
        payload["aud"] = audience
    if issuer is not None:
        payload["iss"] = issuer
    payload.update(claims)
    return jwt.encode(payload, secret.encode("utf-8"), algorithm="HS256")
