"""Recovery tokens (rtctl.gateway.recovery): signed, expiring, bound to one user."""

from __future__ import annotations

import pytest

from rtctl.gateway.recovery import RecoveryTokens, ResumeRefused, recovery_key
from rtctl.tokens import issue_token
from tests.conftest import SECRET


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def tokens(clock: Clock, secret: str | None = None) -> RecoveryTokens:
    key, _ = recovery_key(secret, SECRET)
    return RecoveryTokens(key, ttl=60.0, clock=clock)


def test_a_token_names_its_session_until_it_expires() -> None:
    clock = Clock()
    issuer = tokens(clock)
    token, expires = issuer.issue("ab12-7", "alice")
    assert expires == clock.now + 60
    clock.now += 59.9
    assert issuer.check(token, "alice") == "ab12-7"
    clock.now += 0.1
    with pytest.raises(ResumeRefused) as refused:
        issuer.check(token, "alice")
    assert refused.value.reason == "expired"


def test_a_token_resumes_only_its_own_user() -> None:
    issuer = tokens(Clock())
    token, _ = issuer.issue("ab12-7", "alice")
    with pytest.raises(ResumeRefused) as refused:
        issuer.check(token, "mallory")
    assert refused.value.reason == "wrong_user"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: "x" + t,  # payload changed
    lambda t: t.replace(".", ""),  # no signature
    lambda t: "",
    lambda t: "é." + t.partition(".")[2],  # not ASCII
])
def test_a_changed_or_garbled_token_is_invalid(mangle: object) -> None:
    issuer = tokens(Clock())
    token, _ = issuer.issue("ab12-7", "alice")
    with pytest.raises(ResumeRefused) as refused:
        issuer.check(mangle(token), "alice")  # type: ignore[operator]
    assert refused.value.reason == "invalid"


def test_nodes_share_the_key_derived_from_one_secret_and_no_other() -> None:
    clock = Clock()
    token, _ = tokens(clock).issue("ab12-7", "alice")
    assert tokens(clock).check(token, "alice") == "ab12-7"  # another node, same JWT secret
    with pytest.raises(ResumeRefused):
        tokens(clock, secret="another recovery secret").check(token, "alice")


def test_the_key_is_not_the_jwt_secret_so_neither_token_passes_for_the_other() -> None:
    key, shared = recovery_key(None, SECRET)
    assert shared
    assert key != SECRET.encode()
    jwt = issue_token(SECRET, sub="alice", ttl=60)
    with pytest.raises(ResumeRefused) as refused:
        tokens(Clock()).check(jwt, "alice")
    assert refused.value.reason == "invalid"


def test_without_any_secret_the_key_is_this_nodes_own() -> None:
    first, shared = recovery_key(None, None)
    second, _ = recovery_key(None, None)
    assert not shared
    assert first != second
