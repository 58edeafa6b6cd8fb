"""Tests for rtctl.tokens: what issue_token signs, checked by the gateway's verifier."""

from __future__ import annotations

import subprocess
import sys

import jwt
import pytest

from rtctl.exceptions import AuthError, ConfigError
from rtctl.gateway.auth import AuthConfig, Authenticator
from rtctl.tokens import issue_token

SECRET = "test-secret-that-is-comfortably-longer-than-32-bytes"
HOUR = 3600
T = 1_700_000_000.75  # a fixed "now", with a fraction that iat must drop


def at(now: float, *, audience: str | None = None, issuer: str | None = None) -> Authenticator:
    """A verifier for SECRET whose clock stands at ``now``."""
    config = AuthConfig(secret=SECRET, audience=audience, issuer=issuer)
    return Authenticator(config, clock=lambda: now)


def test_round_trip_with_audience_issuer_and_claims() -> None:
    token = issue_token(SECRET, sub="bob", ttl=HOUR, claims={"role": "admin"},
                        audience="game", issuer="rtctl-test", now=T)
    ident = at(T, audience="game", issuer="rtctl-test").authenticate(token)
    assert ident.user == "bob"
    assert dict(ident.claims) == {"sub": "bob", "iat": int(T), "exp": int(T) + HOUR,
                                  "aud": "game", "iss": "rtctl-test", "role": "admin"}
    assert ident.expires_at == int(T) + HOUR


def test_signed_with_hs256_and_the_secret() -> None:
    token = issue_token(SECRET, sub="bob", ttl=HOUR, now=T)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    with pytest.raises(AuthError) as info:
        Authenticator(AuthConfig(secret="another-secret-of-at-least-32-bytes!"),
                      clock=lambda: T).authenticate(token)
    assert info.value.reason == "bad_signature"


def test_without_ttl_never_expires() -> None:
    ident = at(T).authenticate(issue_token(SECRET, sub="bob", ttl=None, now=T))
    assert ident.expires_at is None
    assert set(ident.claims) == {"sub", "iat"}


def test_claims_are_added_last_and_override() -> None:
    token = issue_token(SECRET, sub="bob", ttl=HOUR, claims={"sub": "eve", "exp": int(T) + 60},
                        now=T)
    ident = at(T).authenticate(token)
    assert (ident.user, ident.expires_at) == ("eve", int(T) + 60)


def test_defaults_to_the_wall_clock() -> None:
    """With no ``now`` the token is fresh for the real clock (the default verifier's)."""
    token = issue_token(SECRET, sub="bob", ttl=HOUR)
    assert Authenticator(AuthConfig(secret=SECRET)).authenticate(token).user == "bob"


def test_issued_in_the_past_is_expired() -> None:
    token = issue_token(SECRET, sub="bob", ttl=HOUR, now=T - 3 * HOUR)
    with pytest.raises(AuthError) as info:
        at(T).authenticate(token)
    assert info.value.reason == "expired"
    assert token not in str(info.value)


@pytest.mark.parametrize(("secret", "sub", "ttl", "message"), [
    ("", "bob", HOUR, "non-empty signing secret"),
    (SECRET, "", HOUR, "non-empty subject"),
    (SECRET, "bob", 0.0, "positive number of seconds"),
    (SECRET, "bob", -1.0, "positive number of seconds"),
    (SECRET, "bob", float("inf"), "positive number of seconds"),
    (SECRET, "bob", float("nan"), "positive number of seconds"),
])
def test_rejects_bad_arguments(secret: str, sub: str, ttl: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        issue_token(secret, sub=sub, ttl=ttl)


def test_signing_never_imports_the_gateway() -> None:
    """The bench and other tools sign tokens without loading rtctl.gateway."""
    code = ("import sys, rtctl.tokens, rtctl.bench.plan; "
            "print(sorted(m for m in sys.modules if m.startswith('rtctl.gateway')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
