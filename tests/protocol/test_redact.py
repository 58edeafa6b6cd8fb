"""A backend URL's password never leaves in clear (RFC 3986 §3.2.1 userinfo)."""

from __future__ import annotations

import pytest

from rtctl.protocol.redact import REDACTED, redact


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@10.0.0.5:6379/0", f"redis://:{REDACTED}@10.0.0.5:6379/0"),
    ("rediss://game:s3cret@cache/0", f"rediss://game:{REDACTED}@cache/0"),
    ("nats://game:s3cret@a:4222,nats://b:4222", f"nats://game:{REDACTED}@a:4222,nats://b:4222"),
    ("tls://s3cret@nats:4222", f"tls://{REDACTED}@nats:4222"),  # NATS' token form
    ("redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
    ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ("see https://example.com/a@b", "see https://example.com/a@b"),  # an @ in the path
])
def test_a_url_keeps_everything_but_its_secret(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_sentence_with_a_url_and_a_token_loses_both_secrets() -> None:
    text = "cannot connect to redis://u:pw@h:1/0 with ws://g/ws?token=abc"
    assert redact(text) == f"cannot connect to redis://u:{REDACTED}@h:1/0 with ws://g/ws?token={REDACTED}"
