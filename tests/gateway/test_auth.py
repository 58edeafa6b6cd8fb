"""Tests for rtctl.gateway.auth: the JWT refusal matrix, key sources, issuing and the dev secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from rtctl.exceptions import AuthError, ConfigError
from rtctl.gateway.auth import (
    DEFAULT_LEEWAY,
    AuthConfig,
    Authenticator,
    Identity,
    dev_secret_path,
    load_or_create_dev_secret,
    state_dir,
)
from rtctl.protocol.upgrade import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, token_from_request

SECRET = "test-secret-that-is-comfortably-longer-than-32-bytes"
HOUR = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """Build a JWS by hand, for tokens PyJWT refuses to make (alg none, HMAC over a PEM)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims: alice, issued now, expiring in an hour; an override of None drops one."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "iat": now, "exp": now + HOUR}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def pem(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Keys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    pem_path: Path  # the RSA public key
    jwks_path: Path  # ec-1 (ES256) and rsa-1 (RS256)
    single_jwks_path: Path  # the EC key alone, without a kid


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    d = tmp_path_factory.mktemp("keys")
    (d / "rsa.pem").write_text(pem(rsa_key))
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    rsa_jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    jwks = {"keys": [{**ec_jwk, "kid": "ec-1"}, {**rsa_jwk, "kid": "rsa-1", "use": "sig"}]}
    (d / "jwks.json").write_text(json.dumps(jwks))
    (d / "single.json").write_text(json.dumps({"keys": [ec_jwk]}))
    return Keys(rsa_key, ec_key, d / "rsa.pem", d / "jwks.json", d / "single.json")


@pytest.fixture(scope="module")
def auths(keys: Keys) -> dict[str, Authenticator]:
    return {
        "hs": Authenticator(AuthConfig(secret=SECRET, audience="game", issuer="rtctl-test")),
        "hs_plain": Authenticator(AuthConfig(secret=SECRET)),
        "rs": Authenticator(AuthConfig.from_public_key_file(keys.pem_path)),
        "jwks": Authenticator(AuthConfig(jwks=str(keys.jwks_path))),
        "single": Authenticator(AuthConfig(jwks=str(keys.single_jwks_path))),
    }


def hs(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def hs_aud(**overrides: Any) -> str:
    return hs(claims(**{"aud": "game", "iss": "rtctl-test", **overrides}))


# --- accepted ------------------------------------------------------------------------------


def test_hs256_accepts_and_exposes_identity(auths: dict[str, Authenticator]) -> None:
    payload = claims(aud="game", iss="rtctl-test", role="admin")
    ident = auths["hs"].authenticate(hs(payload))
    assert ident == Identity(user="alice", claims=payload, expires_at=float(payload["exp"]))
    assert ident.claims["role"] == "admin"
    assert auths["hs"].algorithms == ("HS256",)


def test_token_without_exp_has_no_expiry(auths: dict[str, Authenticator]) -> None:
    assert auths["hs_plain"].authenticate(hs(claims(exp=None))).expires_at is None


@pytest.mark.parametrize(
    ("auth", "kid", "alg"),
    [
        ("rs", None, "RS256"),
        ("jwks", "ec-1", "ES256"),
        ("jwks", "rsa-1", "RS256"),
        ("single", None, "ES256"),
        ("single", "any-kid", "ES256"),  # the only key has no kid, so it is the candidate
    ],
)
def test_asymmetric_keys_accept(
    keys: Keys, auths: dict[str, Authenticator], auth: str, kid: str | None, alg: str
) -> None:
    private = keys.rsa if alg == "RS256" else keys.ec
    token = jwt.encode(claims(), private, algorithm=alg, headers={"kid": kid} if kid else None)
    assert auths[auth].authenticate(token).user == "alice"


def test_algorithms_follow_the_keys(keys: Keys, auths: dict[str, Authenticator]) -> None:
    assert auths["rs"].algorithms == ("RS256",)
    assert Authenticator(AuthConfig(public_key=pem(keys.ec))).algorithms == ("ES256",)
    assert set(auths["jwks"].algorithms) == {"ES256", "RS256"}
    assert auths["single"].algorithms == ("ES256",)


def test_leeway_absorbs_clock_skew() -> None:
    lenient = Authenticator(AuthConfig(secret=SECRET, leeway=2 * HOUR))
    now = int(time.time())
    assert lenient.authenticate(hs(claims(exp=now - HOUR))).user == "alice"
    assert lenient.authenticate(hs(claims(nbf=now + HOUR))).user == "alice"
    strict = Authenticator(AuthConfig(secret=SECRET, leeway=0))
    with pytest.raises(AuthError) as info:
        strict.authenticate(hs(claims(exp=now - HOUR)))
    assert info.value.reason == "expired"


# --- refused -------------------------------------------------------------------------------

Case = Callable[[Keys], str | None]
NOW = int(time.time())


def _none_alg(alg: str) -> Case:
    return lambda k: raw_token({"alg": alg, "typ": "JWT"}, claims(), lambda _: b"")


def _hmac_over_pem(k: Keys) -> str:
    secret = k.pem_path.read_bytes()  # the classic confusion: the public key as an HMAC secret
    return raw_token(
        {"alg": "HS256", "typ": "JWT"},
        claims(),
        lambda msg: hmac.new(secret, msg, hashlib.sha256).digest(),
    )


def _signed_non_json(k: Keys) -> str:
    signing_input = _b64(json.dumps({"alg": "HS256"}).encode()) + "." + _b64(b"not json")
    sig = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def _tampered(k: Keys) -> str:
    head, _, sig = hs_aud().split(".")
    return f"{head}.{_b64(json.dumps(claims(sub='mallory', aud='game')).encode())}.{sig}"


REFUSALS: list[tuple[str, str, Case, str]] = [
    ("none", "hs", lambda k: None, "missing"),
    ("empty", "hs", lambda k: "", "missing"),
    ("blank", "hs", lambda k: "   ", "missing"),
    ("abc", "hs", lambda k: "abc", "malformed"),
    ("a.b.c", "hs", lambda k: "a.b.c", "malformed"),
    ("payload-not-json", "hs", _signed_non_json, "malformed"),
    ("expired", "hs", lambda k: hs_aud(exp=NOW - HOUR), "expired"),
    ("nbf-future", "hs", lambda k: hs_aud(nbf=NOW + HOUR), "not_yet_valid"),
    ("iat-future", "hs", lambda k: hs_aud(iat=NOW + HOUR), "not_yet_valid"),
    ("wrong-secret", "hs", lambda k: hs(claims(aud="game", iss="rtctl-test"), "x" * 40),
     "bad_signature"),
    ("tampered", "hs", _tampered, "bad_signature"),
    ("wrong-ec-key", "single",
     lambda k: jwt.encode(claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
     "bad_signature"),
    ("wrong-audience", "hs", lambda k: hs_aud(aud="other"), "bad_audience"),
    ("no-audience", "hs", lambda k: hs(claims(iss="rtctl-test")), "bad_audience"),
    ("unexpected-audience", "hs_plain", lambda k: hs(claims(aud="game")), "bad_audience"),
    ("wrong-issuer", "hs", lambda k: hs_aud(iss="evil"), "bad_issuer"),
    ("no-issuer", "hs", lambda k: hs(claims(aud="game")), "bad_issuer"),
    ("no-sub", "hs", lambda k: hs_aud(sub=None), "bad_claims"),
    ("sub-not-string", "hs", lambda k: hs_aud(sub=123), "bad_claims"),
    ("sub-empty", "hs", lambda k: hs_aud(sub=""), "bad_claims"),
    ("exp-word", "hs", lambda k: hs_aud(exp="soon"), "bad_claims"),
    ("exp-numeric-string", "hs", lambda k: hs_aud(exp=str(NOW + HOUR)), "bad_claims"),
    ("alg-none", "hs", _none_alg("none"), "bad_algorithm"),
    ("alg-None-rs", "rs", _none_alg("None"), "bad_algorithm"),
    ("hs256-to-rs256", "rs", _hmac_over_pem, "bad_algorithm"),
    ("rs256-to-hs256", "hs", lambda k: jwt.encode(claims(), k.rsa, algorithm="RS256"),
     "bad_algorithm"),
    ("alg-mismatches-kid", "jwks",
     lambda k: jwt.encode(claims(), k.rsa, algorithm="RS256", headers={"kid": "ec-1"}),
     "bad_algorithm"),
    ("unknown-kid", "jwks",
     lambda k: jwt.encode(claims(), k.ec, algorithm="ES256", headers={"kid": "nope"}),
     "unknown_key"),
    ("no-kid-several-keys", "jwks", lambda k: jwt.encode(claims(), k.ec, algorithm="ES256"),
     "unknown_key"),
]  # fmt: skip


@pytest.mark.parametrize(("auth", "make", "reason"), [c[1:] for c in REFUSALS],
                         ids=[c[0] for c in REFUSALS])  # fmt: skip
def test_refusals(
    keys: Keys, auths: dict[str, Authenticator], auth: str, make: Case, reason: str
) -> None:
    token = make(keys)
    with pytest.raises(AuthError) as info:
        auths[auth].authenticate(token)
    assert info.value.reason == reason
    assert info.value.http_status == 401
    assert info.value.detail
    assert "\n" not in info.value.detail
    if token and token.strip():
        assert token.strip() not in str(info.value)
        for part in token.split("."):
            assert len(part) < 12 or part not in str(info.value)


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"audience": "game"},
        {"secret": SECRET, "jwks": "keys.json"},
        {"secret": SECRET, "public_key": "pem", "jwks": "keys.json"},
        {"secret": ""},
        {"secret": SECRET, "leeway": -1.0},
        {"secret": SECRET, "leeway": float("nan")},
    ],
)
def test_auth_config_rejects(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        AuthConfig(**kwargs)


def test_auth_config_defaults_and_repr_hides_secret() -> None:
    config = AuthConfig(secret=SECRET)
    assert config.leeway == DEFAULT_LEEWAY
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    "content",
    [None, "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PRIVATE"],
)
def test_bad_public_key_file(keys: Keys, tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "key.pem"
    if content == "PRIVATE":
        content = keys.rsa.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError):
        AuthConfig.from_public_key_file(path)


def test_bad_inline_public_key() -> None:
    with pytest.raises(ConfigError):
        Authenticator(AuthConfig(public_key="-----BEGIN PUBLIC KEY-----\nnope\n"))


@pytest.mark.parametrize(
    "content",
    [None, "{not json", "[]", '{"keys": []}', '{"keys": [{"kty": "XYZ"}]}', "PRIVATE"],
)
def test_bad_jwks_file(keys: Keys, tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "jwks.json"
    if content == "PRIVATE":
        content = json.dumps({"keys": [RSAAlgorithm.to_jwk(keys.rsa, as_dict=True)]})
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError):
        Authenticator(AuthConfig(jwks=str(path)))


# --- issuing -------------------------------------------------------------------------------


def test_issue_round_trip(auths: dict[str, Authenticator]) -> None:
    auth = auths["hs"]
    now = time.time()
    ident = auth.authenticate(auth.issue(sub="bob", ttl=HOUR, claims={"role": "admin"}, now=now))
    assert ident.user == "bob"
    assert ident.claims["role"] == "admin"
    assert ident.claims["aud"] == "game"
    assert ident.claims["iss"] == "rtctl-test"
    assert ident.claims["iat"] == int(now)
    assert ident.expires_at == ident.claims["exp"] == int(now) + HOUR


def test_issue_without_ttl_never_expires(auths: dict[str, Authenticator]) -> None:
    ident = auths["hs_plain"].authenticate(auths["hs_plain"].issue(sub="bob", ttl=None))
    assert ident.expires_at is None
    assert "exp" not in ident.claims
    assert "aud" not in ident.claims


def test_issue_in_the_past_is_expired(auths: dict[str, Authenticator]) -> None:
    token = auths["hs"].issue(sub="bob", ttl=HOUR, now=time.time() - 3 * HOUR)
    with pytest.raises(AuthError) as info:
        auths["hs"].authenticate(token)
    assert info.value.reason == "expired"
    assert token not in str(info.value)


@pytest.mark.parametrize("auth", ["rs", "jwks"])
def test_issue_needs_a_secret(auths: dict[str, Authenticator], auth: str) -> None:
    with pytest.raises(ConfigError, match="shared secret"):
        auths[auth].issue(sub="bob", ttl=HOUR)


@pytest.mark.parametrize(("sub", "ttl"), [("", HOUR), ("bob", 0.0), ("bob", -1.0)])
def test_issue_rejects_bad_arguments(auths: dict[str, Authenticator], sub: str, ttl: float) -> None:
    with pytest.raises(ConfigError):
        auths["hs"].issue(sub=sub, ttl=ttl)


# --- finding the token ---------------------------------------------------------------------

SUB = TOKEN_SUBPROTOCOL_PREFIX + "C"


@pytest.mark.parametrize(
    ("authorization", "query", "subprotocols", "expected"),
    [
        ("Bearer A", "token=B", [SUBPROTOCOL, SUB], "A"),
        ("bearer A", "token=B", [SUB], "A"),
        ("BEARER   A  ", "", [], "A"),
        ("Basic dXNlcjpwdw==", "token=B", [SUB], "B"),
        ("Bearer ", "token=B", [SUB], "B"),
        (None, "token=B", [SUB], "B"),
        (None, "room=7&token=B&x=1", [], "B"),
        (None, "tokens=B&token=", [SUBPROTOCOL, SUB], "C"),
        ("", "", [SUBPROTOCOL, SUB, TOKEN_SUBPROTOCOL_PREFIX + "D"], "C"),
        (None, "", [SUBPROTOCOL], None),
        (None, "", [TOKEN_SUBPROTOCOL_PREFIX], None),
    ],
)
def test_token_from_request(
    authorization: str | None, query: str, subprotocols: list[str], expected: str | None
) -> None:
    found = token_from_request(authorization=authorization, query=query, subprotocols=subprotocols)
    assert found == expected


def test_subprotocol_carries_a_real_jwt(auths: dict[str, Authenticator]) -> None:
    token = auths["hs"].issue(sub="carol", ttl=HOUR)
    found = token_from_request(
        authorization=None, query="", subprotocols=[SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token]
    )
    assert auths["hs"].authenticate(found).user == "carol"


# --- state dir and dev secret --------------------------------------------------------------


def test_state_dir_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RTCTL_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "rtctl"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "rtctl"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "rtctl"
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path / "own"))
    assert state_dir() == tmp_path / "own"
    assert dev_secret_path() == tmp_path / "own" / "dev-secret"


def test_dev_secret_created_once_then_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path / "a" / "b"))
    secret, path, created = load_or_create_dev_secret()
    assert created
    assert path == tmp_path / "a" / "b" / "dev-secret"
    assert len(secret) >= 40
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_dev_secret() == (secret, path, False)
    assert [p.name for p in path.parent.iterdir()] == ["dev-secret"]  # no temp files left
    auth = Authenticator(AuthConfig(secret=secret))
    assert auth.authenticate(auth.issue(sub="dev", ttl=60)).user == "dev"


def test_empty_dev_secret_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path))
    (tmp_path / "dev-secret").write_text("\n")
    secret, path, created = load_or_create_dev_secret()
    assert created
    assert secret
    assert path.read_text().strip() == secret
