"""Token authentication for the WebSocket upgrade: JWTs (RFC 7519) checked once per connection.

A client proves who it is with a JSON Web Token in one of the carriers of
:mod:`rtctl.protocol.upgrade` (Bearer header, ``token=`` query, or the
``rtctl.bearer.<jwt>`` subprotocol). The key that verifies it is
one of: an HS256 shared secret, a PEM public key (RS256/ES256), or a JWKS file
(RFC 7517 §5) whose keys are picked by the token header's ``kid`` (RFC 7515
§4.1.4).

The allowed algorithms follow from the configured key, never from the token
(RFC 8725 §2.1, §3.1): an HS256 token shown to an RSA gateway is refused, and
``alg: none`` is always refused. ``exp``/``nbf``/``iat`` (RFC 7519 §4.1.4-§4.1.6)
must be numbers and are checked here, not by PyJWT, against the clock the
gateway gives the :class:`Authenticator`, with a small clock-skew leeway: so
tests and simulations move time for token expiry as for everything else.
``aud`` and ``iss`` (§4.1.3, §4.1.1) must match when configured, and a token
that names an audience is refused when the gateway has none (§4.1.3: "MUST be
rejected"). ``sub`` (§4.1.2) is required and becomes the user. Every refusal is
an :class:`AuthError` whose ``reason`` is one word and whose ``detail`` is one
sentence that never quotes the token.

This module only verifies. Signing lives in :mod:`rtctl.tokens` and the dev
secret of local play in :mod:`rtctl.cli.devsecret`; the gateway reads no
environment variable and no file but the key files it is configured with.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.types import Options

from rtctl.exceptions import AuthError, ConfigError, TokenReason
from rtctl.units import format_duration

__all__ = [
    "DEFAULT_LEEWAY",
    "AuthConfig",
    "Authenticator",
    "Identity",
]

DEFAULT_LEEWAY = 5.0

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_TIME_CLAIMS = ("exp", "nbf", "iat")
_CLAIM_TYPE_ERRORS = (
    (InvalidSubjectError, "sub"),
    (InvalidJTIError, "jti"),
)

_PublicKey = RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """Where the verifying key comes from, and which claims must match.

    Exactly one of ``secret`` (HS256), ``public_key`` (PEM text, RS256/ES256)
    or ``jwks`` (path to a JWKS file, RFC 7517 §5) must be set.
    """

    secret: str | None = field(default=None, repr=False)
    public_key: str | None = None
    jwks: str | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway: float = DEFAULT_LEEWAY

    def __post_init__(self) -> None:
        sources = [n for n in ("secret", "public_key", "jwks") if getattr(self, n) is not None]
        if len(sources) != 1:
            found = " and ".join(sources) if sources else "none"
            raise ConfigError(
                "authentication needs exactly one key source "
                f"(a shared secret, a public key or a JWKS file), got {found}"
            )
        if getattr(self, sources[0]) == "":
            raise ConfigError(f"the authentication {sources[0].replace('_', ' ')} is empty")
        if not math.isfinite(self.leeway) or self.leeway < 0:
            raise ConfigError(f"auth leeway must be zero or more seconds, got {self.leeway!r}")

    @classmethod
    def from_public_key_file(cls, path: str | os.PathLike[str], **kw: Any) -> AuthConfig:
        """Read a PEM public key from ``path``; ``kw`` are the other fields."""
        try:
            pem = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not PEM text"
            raise ConfigError(f"cannot read the public key file {os.fspath(path)}: {why}") from None
        _load_public_key(pem, os.fspath(path))
        return cls(public_key=pem, **kw)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who connected: the token's ``sub``, all its claims and its expiry.

    ``session`` is the session a recovery token at the upgrade asked for and
    was granted (:mod:`rtctl.gateway.recovery`); ``resume_error`` says why
    one offered was not.
    """

    user: str
    claims: Mapping[str, Any]
    expires_at: float | None
    session: str | None = None
    resume_error: str | None = None


class Authenticator:
    """Verifies tokens against one :class:`AuthConfig`; keys are loaded once here.

    ``clock`` is the gateway's wall clock (seconds since the epoch): ``exp``,
    ``nbf`` and ``iat`` are judged by it, so a gateway run on a fake clock
    expires tokens on that clock too.
    """

    def __init__(self, config: AuthConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._key: _PublicKey | bytes | None = None
        self._jwks: list[jwt.PyJWK] = []
        # The time claims are checked in _check_times, on self._clock.
        self._options: Options = {
            "require": ["sub"],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        }
        if config.secret is not None:
            self._key = config.secret.encode("utf-8")
            self.algorithms: tuple[str, ...] = ("HS256",)
        elif config.public_key is not None:
            self._key, alg = _load_public_key(config.public_key, "the configured public key")
            self.algorithms = (alg,)
        else:
            assert config.jwks is not None
            self._jwks = _load_jwks(config.jwks)
            self.algorithms = tuple(dict.fromkeys(k.algorithm_name for k in self._jwks))

    def authenticate(self, token: str | None) -> Identity:
        """Return who ``token`` names, or raise :class:`AuthError` saying why not."""
        if token is None or not token.strip():
            raise AuthError("missing", "no token was offered (use an Authorization: Bearer header)")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed", "the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none" or alg not in self.algorithms:
            raise AuthError(
                "bad_algorithm",
                f"the token's algorithm {_short(alg)} is not allowed here "
                f"(this gateway accepts {', '.join(self.algorithms)})",
            )
        key: jwt.PyJWK | _PublicKey | bytes | None = self._key
        algorithms: Sequence[str] = self.algorithms
        if self._jwks:
            key = self._pick_jwk(header.get("kid"))
            algorithms = [key.algorithm_name]
        assert key is not None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                options=self._options,
                audience=self.config.audience,
                issuer=self.config.issuer,
            )
        except jwt.PyJWTError as exc:
            raise self._refusal(exc) from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("bad_claims", "the token's subject (sub) must be a non-empty string")
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not _is_number(value)):
                raise AuthError("bad_claims", f"the token's {name} claim is not a number")
        self._check_times(claims)
        exp = claims.get("exp")
        return Identity(
            user=sub,
            claims=MappingProxyType(claims),
            expires_at=None if exp is None else float(exp),
        )

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        """Refuse a token outside its lifetime on the gateway's clock (RFC 7519 §4.1.4-§4.1.6).

        The leeway widens the window both ways: ``exp`` must be after ``now -
        leeway`` and ``nbf``/``iat`` no later than ``now + leeway`` (``iat`` in
        the future means a wrong clock somewhere). Called once the claims are
        known to be numbers.
        """
        now, leeway = self._clock(), self.config.leeway
        starts = [claims[name] for name in ("nbf", "iat") if claims.get(name) is not None]
        if any(start > now + leeway for start in starts):
            raise AuthError(
                "not_yet_valid",
                "the token is not valid yet (nbf or iat is more than "
                f"{format_duration(leeway)} in the future; check the clocks)",
            )
        exp = claims.get("exp")
        if exp is not None and exp <= now - leeway:
            ago = format_duration(round(now - exp))
            raise AuthError(
                "expired", f"the token expired {ago} ago (leeway {format_duration(leeway)})"
            )

    def _pick_jwk(self, kid: Any) -> jwt.PyJWK:
        """Choose the JWKS key the token names (RFC 7515 §4.1.4), or the only one."""
        for key in self._jwks:
            if kid is not None and key.key_id == kid:
                return key
        if len(self._jwks) == 1 and (kid is None or self._jwks[0].key_id is None):
            return self._jwks[0]
        if kid is None:
            raise AuthError("unknown_key", "the token has no key id (kid) and the JWKS has several")
        raise AuthError("unknown_key", f"no key in the JWKS has the token's key id {_short(kid)}")

    def _refusal(self, exc: jwt.PyJWTError) -> AuthError:
        """Turn a PyJWT exception into the :class:`AuthError` the gateway answers with."""
        if isinstance(exc, jwt.MissingRequiredClaimError):
            missing: dict[str, TokenReason] = {"aud": "bad_audience", "iss": "bad_issuer"}
            reason = missing.get(exc.claim, "bad_claims")
            return AuthError(reason, f"the token has no {exc.claim} claim, which is required")
        if isinstance(exc, jwt.InvalidAudienceError):
            if self.config.audience is None:
                why = "names an audience (aud) but this gateway is configured with none"
            else:
                why = f"is not for the audience {self.config.audience!r}"
            return AuthError("bad_audience", f"the token {why}")
        if isinstance(exc, jwt.InvalidIssuerError):
            return AuthError(
                "bad_issuer", f"the token's issuer (iss) is not {self.config.issuer!r}"
            )
        if isinstance(exc, jwt.InvalidSignatureError):
            return AuthError("bad_signature", "the token's signature does not match the key")
        if isinstance(exc, jwt.InvalidAlgorithmError):
            return AuthError("bad_algorithm", "the token's algorithm does not match its key")
        for kind, claim in _CLAIM_TYPE_ERRORS:
            if isinstance(exc, kind):
                return AuthError("bad_claims", f"the token's {claim} claim has the wrong type")
        if isinstance(exc, jwt.InvalidKeyError):
            return AuthError("bad_signature", "the configured key cannot verify this token")
        return AuthError("malformed", "the token could not be decoded")


def _load_public_key(pem: str, where: str) -> tuple[_PublicKey, str]:
    """Parse PEM text into a key object and the algorithm it implies."""
    if "PRIVATE KEY" in pem:
        raise ConfigError(f"{where} is a private key; give the gateway only the public half")
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise ConfigError(f"{where} is not a PEM public key") from None
    if isinstance(key, RSAPublicKey):
        return key, "RS256"
    if isinstance(key, EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        return key, _EC_ALGORITHMS[key.curve.name]
    raise ConfigError(f"{where} must be an RSA or P-256/P-384/P-521 EC public key")


def _load_jwks(path: str) -> list[jwt.PyJWK]:
    """Read a JWK Set (RFC 7517 §5), keeping signing keys (§4.2 ``use`` not ``enc``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the JWKS file {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"the JWKS file {path} is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigError(f'the JWKS file {path} has no "keys" array (RFC 7517 §5)')
    keys = [k for k in data["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    if any("d" in k for k in keys):
        raise ConfigError(f"the JWKS file {path} holds a private key; publish only public keys")
    try:
        return list(jwt.PyJWKSet(keys))
    except jwt.PyJWTError:
        raise ConfigError(f"the JWKS file {path} has no usable signing keys") from None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and math.isfinite(value)


def _short(value: Any) -> str:
    """Quote a header value for an error sentence, cut short so it cannot carry a token."""
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "...'"
