"""Gateway URLs as people type them.

Throughout rtctl a URL is the gateway's base ``ws://host:port``; the
WebSocket endpoint ``/ws`` is appended. A URL that carries a path is used as
it is, so any server can be named exactly.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from rtctl.exceptions import ConfigError

__all__ = ["DEFAULT_ENDPOINT_PATH", "endpoint_url", "http_url", "with_query"]

DEFAULT_ENDPOINT_PATH = "/ws"


def endpoint_url(url: str, *, token: str | None = None) -> str:
    """``ws://host:port`` → ``ws://host:port/ws``, optionally with ``?token=``."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    if parts.scheme not in ("ws", "wss"):
        raise ConfigError(f"URL {url!r} must start with ws:// or wss://")
    if not parts.hostname:
        raise ConfigError(f"URL {url!r} names no host (try ws://127.0.0.1:8765)")
    try:
        parts.port  # noqa: B018 - urllib checks the port (a number, 0-65535) when it is read
    except ValueError:
        raise ConfigError(f"URL {url!r} has no valid port (a number, 0 to 65535)") from None
    path = parts.path if parts.path not in ("", "/") else DEFAULT_ENDPOINT_PATH
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return url if token is None else with_query(url, token=token)


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query, after what it already has."""
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def http_url(url: str, path: str) -> str:
    """The HTTP URL of ``path`` (``/healthz``, ``/metrics``) on the gateway at ``url``."""
    parts = urlsplit(endpoint_url(url))
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, path, "", ""))
