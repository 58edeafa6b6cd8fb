"""``rtctl conformance server``: check any gateway speaking rtctl's protocol, as a black box.

Each check (:mod:`~rtctl.conformance.server_checks_jsonrpc`, ``_wire``, ``_session``) opens
its own connections, asserts one rule of docs/protocol.md and reports a
:class:`~rtctl.conformance.results.Result`. A server that cannot be reached or stays silent
fails the first check that meets it, and every later check at once with the same cause, so
a dead gateway is reported in about one timeout rather than one per check. "Silent" is
judged over the whole run (:class:`~rtctl.conformance.server_probe.Heard`): once the server
has sent one JSON-RPC response, a method it never answers fails that check only, unless
:data:`STOPPED_AFTER` checks in a row get no reply and a fresh connection's ``sys.ping``
gets none either (the server stopped answering; a lossy link that drops two replies in a
row is not that).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

from rtctl.conformance.results import Outcome, Result
from rtctl.conformance.server_checks_jsonrpc import CHECKS as JSONRPC_CHECKS
from rtctl.conformance.server_checks_session import CHECKS as SESSION_CHECKS
from rtctl.conformance.server_checks_wire import CHECKS as WIRE_CHECKS
from rtctl.conformance.server_probe import (
    Check,
    CheckFailed,
    CheckSkipped,
    Heard,
    NoReply,
    Probe,
    Target,
    Unreachable,
)
from rtctl.exceptions import ConfigError

__all__ = ["CHECKS", "Target", "run_checks", "select_checks"]

CHECKS: tuple[Check, ...] = JSONRPC_CHECKS + WIRE_CHECKS + SESSION_CHECKS
STOPPED_AFTER = 2  # checks in a row with no reply: the server stopped answering altogether


def select_checks(only: Collection[str] = (), skip: Collection[str] = ()) -> list[Check]:
    """The checks ``--check`` names (all when none), less those ``--skip`` names."""
    known = {check.id for check in CHECKS}
    unknown = sorted((set(only) | set(skip)) - known)
    if unknown:
        raise ConfigError(f"no such check: {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")
    return [c for c in CHECKS if (not only or c.id in only) and c.id not in skip]


async def _run_one(check: Check, target: Target,
                   heard: Heard) -> tuple[Result, CheckFailed | None]:
    """The check's result, and what failed it when it was the server's silence."""
    probe = Probe(target, heard)
    started = time.monotonic()
    cause: CheckFailed | None = None
    try:
        detail, outcome = await check.run(probe), Outcome.PASS
    except CheckSkipped as exc:
        detail, outcome = str(exc), Outcome.SKIP
    except (Unreachable, NoReply) as exc:
        detail, outcome, cause = str(exc), Outcome.FAIL, exc
    except CheckFailed as exc:
        detail, outcome = str(exc), Outcome.FAIL
    except TimeoutError:
        detail, outcome = f"nothing came within --timeout {target.timeout:g} s", Outcome.FAIL
    except Exception as exc:  # a kit reports what a broken server made it see, never a traceback
        detail, outcome = f"{type(exc).__name__}: {exc}", Outcome.FAIL
    finally:
        await probe.aclose()
    result = Result(check.id, check.section, check.title, outcome, detail,
                    time.monotonic() - started)
    return result, cause


async def run_checks(target: Target, checks: Sequence[Check] = CHECKS) -> list[Result]:
    """Run ``checks`` against ``target`` one after another (they share users and rooms)."""
    results: list[Result] = []
    heard = Heard()
    dead: str | None = None  # the cause that fails every check left
    silent = 0  # checks in a row that got no reply
    for check in checks:
        if dead is not None:
            results.append(Result(check.id, check.section, check.title, Outcome.FAIL,
                                  f"not run: {dead}"))
            continue
        result, cause = await _run_one(check, target, heard)
        results.append(result)
        silent = silent + 1 if isinstance(cause, NoReply) else 0
        if isinstance(cause, Unreachable):
            dead = str(cause)
        elif silent >= STOPPED_AFTER:
            if await _answers(target, heard):
                silent = 0  # it still answers: each check failed on its own
            else:
                dead = f"the server stopped answering ({STOPPED_AFTER} checks in a row: {cause})"
    return results


async def _answers(target: Target, heard: Heard) -> bool:
    """Does the server answer a ``sys.ping`` (§7) on a fresh connection?"""
    probe = Probe(target, heard)
    try:
        conn = await probe.connect()
        return "result" in await conn.call("sys.ping")
    except Exception:  # whatever stops it (no connection, no reply, a close): it does not
        return False
    finally:
        await probe.aclose()
