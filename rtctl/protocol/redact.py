"""Credentials never leave in clear: the one place tokens are cut out of text.

A token travels in an ``Authorization: Bearer`` header (RFC 6750 §2.1), a
``token=`` query parameter (a recovery token in ``recover=``), an
``rtctl.bearer.<jwt>`` subprotocol (:mod:`rtctl.protocol.upgrade`) and the
params of ``session.refresh``; a backend's password in the userinfo of its
URL (``redis://:secret@host``, RFC 3986 §3.2.1; NATS' ``nats://token@host``). Whatever
shows traffic to someone else -- the tap (so ``rtctl inspect --record`` and
``--pcap``) and the gateway's debug log -- passes its text through
:func:`redact` first. A JWT is recognised by its shape wherever it stands:
three base64url parts, the first an encoded JSON object (``eyJ``, RFC 7515
§7.1), so a token in a game's own method is cut out too. What replaces a token
keeps JSON text valid JSON; a URL keeps the user name before a password, so the
banner and the logs still say which account a node uses.
"""

from __future__ import annotations

import logging
import re

from rtctl.protocol.upgrade import TOKEN_SUBPROTOCOL_PREFIX

__all__ = ["REDACTED", "RedactCredentials", "redact"]

REDACTED = "<redacted>"

_CREDENTIALS = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"  # a JWS compact serialization
    r"|(?<=[Bb]earer )[^\s\"',]+"  # whatever a Bearer header carries
    r"|(?<=[?&]token=)[^\s\"'&#]+"  # the query carrier
    r"|(?<=[?&]recover=)[^\s\"'&#]+"  # a recovery token (rtctl.gateway.recovery) ...
    r'|(?<="recovery_token":")[^"]+'  # ... and as session.info answers it
    rf"|(?<={re.escape(TOKEN_SUBPROTOCOL_PREFIX)})[^\s\"',]+"  # the subprotocol carrier
)
# scheme://user:password@host keeps the user; scheme://secret@host is NATS' token form.
_USERINFO = re.compile(r"(?<=://)(?:([^/\s:@]*):)?[^/\s@]+@")


def _userinfo(match: re.Match[str]) -> str:
    user = match.group(1)
    return f"{REDACTED}@" if user is None else f"{user}:{REDACTED}@"


def redact(text: str) -> str:
    """``text`` with every token replaced by :data:`REDACTED`."""
    return _USERINFO.sub(_userinfo, _CREDENTIALS.sub(REDACTED, text))


class RedactCredentials(logging.Filter):
    """A logging filter that redacts a record's message, so debug logs carry no token.

    Install it on the logger that creates the records (a filter on a logger is
    not inherited by its children).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
