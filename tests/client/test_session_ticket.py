"""The session ticket alone: what ``session.info`` gave, the upgrade's ``?recover=``, and
when the recovery token is due to be fetched again (no I/O)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rtctl.client import ProtocolError
from rtctl.client.recovery import SessionTicket

INFO = {"connection_id": "s1", "recovery_token": "tok", "recovery_expires_at": 100_000,
        "resumed": True, "resume_error": None}


def test_a_ticket_puts_its_token_in_the_upgrade_query() -> None:
    ticket = SessionTicket()
    assert ticket.url("ws://h:1/ws") == "ws://h:1/ws"
    ticket.update({**INFO, "recovery_token": "a.b:c-d_e"}, now=0.0, clock_offset=None)
    assert ticket.url("ws://h:1/ws") == "ws://h:1/ws?recover=a.b%3Ac-d_e"
    assert ticket.url("ws://h:1/ws?token=x") == "ws://h:1/ws?token=x&recover=a.b%3Ac-d_e"
    assert (ticket.session, ticket.resumed, ticket.resume_error) == ("s1", True, None)


@pytest.mark.parametrize(("now", "offset", "refresh_at"), [
    (40.0, None, 70.0),  # expires at 100 s: half of the 60 s left
    (40.0, 10.0, 65.0),  # the gateway's clock is 10 s ahead: 50 s left on ours
    (120.0, None, 120.0),  # already expired: fetch again at once
])
def test_a_ticket_is_due_at_half_its_life(now: float, offset: float | None,
                                          refresh_at: float) -> None:
    ticket = SessionTicket()
    ticket.update(INFO, now=now, clock_offset=offset)
    assert ticket.refresh_at == pytest.approx(refresh_at)
    assert not ticket.due(refresh_at - 0.001)
    assert ticket.due(refresh_at)


def test_a_gateway_without_recovery_gives_no_token() -> None:
    ticket = SessionTicket()
    ticket.update(INFO, now=0.0, clock_offset=None)
    ticket.update({"connection_id": "s2"}, now=0.0, clock_offset=None)
    assert (ticket.token, ticket.refresh_at, ticket.session, ticket.resumed) == (
        None, math.inf, "s2", False)
    assert ticket.url("ws://h:1/ws") == "ws://h:1/ws"


@pytest.mark.parametrize("info", [
    [1], {}, {**INFO, "connection_id": 7}, {**INFO, "recovery_token": 5},
    {**INFO, "recovery_expires_at": "soon"}, {**INFO, "recovery_expires_at": True},
    {**INFO, "resume_error": 3},
])
def test_a_malformed_session_info_is_a_protocol_error_and_changes_nothing(info: Any) -> None:
    ticket = SessionTicket()
    ticket.update(INFO, now=0.0, clock_offset=None)
    with pytest.raises(ProtocolError):
        ticket.update(info, now=1.0, clock_offset=None)
    assert (ticket.token, ticket.session) == ("tok", "s1")
