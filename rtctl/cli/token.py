"""``rtctl token``: mint a JWT for development and tests."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rtctl.cli.options import JwtSecret, dev_or_given_secret, positive_duration
from rtctl.exceptions import ConfigError
from rtctl.protocol import jsonrpc
from rtctl.tokens import issue_token

__all__ = ["token"]


def _claims(pairs: list[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--claim expects KEY=VALUE, got {pair!r}")
        try:
            claims[key] = jsonrpc.loads(raw)
        except ValueError:
            claims[key] = raw  # plain text stays text: role=admin
    return claims


def token(
    sub: Annotated[str, typer.Option("--sub", help="The user the token names (the `sub` claim).")],
    ttl: Annotated[str, typer.Option(
        help="Lifetime: 30s, 15m, 1h ... or 'none' for a token without `exp`.")] = "1h",
    claim: Annotated[list[str] | None, typer.Option(
        help="Extra claim KEY=VALUE; VALUE is JSON when it parses (n=3, tags=[\"a\"]), "
             "else text (role=admin). Repeatable.")] = None,
    audience: Annotated[str | None, typer.Option(help="Set the `aud` claim.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Set the `iss` claim.")] = None,
    jwt_secret: JwtSecret = None,
) -> None:
    """Print a signed HS256 token, and nothing else, on stdout.

    With no --jwt-secret (or RTCTL_JWT_SECRET) it signs with the dev secret that
    `rtctl serve` uses in dev mode, so `rtctl serve` and `rtctl token --sub alice`
    work together with no configuration.

    Exit codes: 0 token printed; 2 bad usage (a bad --ttl or --claim).
    """
    secret, _ = dev_or_given_secret(jwt_secret)
    lifetime = None if ttl.lower() == "none" else positive_duration(ttl, "--ttl")
    typer.echo(issue_token(secret, sub=sub, ttl=lifetime, claims=_claims(claim or []),
                           audience=audience, issuer=issuer))
