"""Tests for rtctl.gateway.auth: the JWT refusal matrix, key sources and the clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


T = 1_000_000  # 1970-01-12: long expired by the real clock, so only the fake one can pass it


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T)


@pytest.fixture
def on_clock(clock: FakeClock) -> Authenticator:
    return Authenticator(AuthConfig(secret=SECRET), clock=clock)


def test_lifetime_is_judged_on_the_injected_clock(
    clock: FakeClock, on_clock: Authenticator
) -> None:
    token = hs({"sub": "alice", "iat": T, "nbf": T, "exp": T + HOUR})
    assert on_clock.authenticate(token).expires_at == T + HOUR
    clock.now = T + HOUR + DEFAULT_LEEWAY - 1  # past exp, within the leeway
    assert on_clock.authenticate(token).user == "alice"
    clock.now = T + HOUR + DEFAULT_LEEWAY + 1
    with pytest.raises(AuthError) as info:
        on_clock.authenticate(token)
    assert info.value.reason == "expired"
    assert info.value.detail == "the token expired 6s ago (leeway 5s)"
    clock.now = T - DEFAULT_LEEWAY  # before nbf and iat, within the leeway
    assert on_clock.authenticate(token).user == "alice"
    clock.now = T - DEFAULT_LEEWAY - 1
    with pytest.raises(AuthError) as info:
        on_clock.authenticate(token)
    assert info.value.reason == "not_yet_valid"
    assert info.value.detail == (
        "the token is not valid yet (nbf or iat is more than 5s in the future; check the clocks)"
    )


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_each_start_claim_is_checked_on_the_clock(on_clock: Authenticator, claim: str) -> None:
    token = hs({"sub": "alice", claim: T + DEFAULT_LEEWAY + 1})
    with pytest.raises(AuthError) as info:
        on_clock.authenticate(token)
    assert info.value.reason == "not_yet_valid"


def test_expiry_is_exclusive_at_exp_plus_leeway(clock: FakeClock, on_clock: Authenticator) -> None:
    """RFC 7519 §4.1.4: the current time MUST be before exp (here: exp + leeway)."""
    token = hs({"sub": "alice", "exp": T})
    clock.now = T + DEFAULT_LEEWAY - 0.5
    assert on_clock.authenticate(token).user == "alice"
    clock.now = T + DEFAULT_LEEWAY
    with pytest.raises(AuthError) as info:
        on_clock.authenticate(token)
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
    ("exp-bool", "hs", lambda k: hs_aud(exp=True), "bad_claims"),
    ("nbf-word", "hs", lambda k: hs_aud(nbf="now"), "bad_claims"),
    ("iat-word", "hs", lambda k: hs_aud(iat="now"), "bad_claims"),
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
    token = hs_aud(sub="carol")
    found = token_from_request(
        authorization=None, query="", subprotocols=[SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token]
    )
    assert auths["hs"].authenticate(found).user == "carol"
