"""The client's state machine, as a table."""

from __future__ import annotations

import itertools

import pytest

from rtctl.client.errors import ClientError
from rtctl.client.states import (
    ACCEPTS_MESSAGES,
    TRANSITIONS,
    ClientState,
    IllegalTransition,
    StateChanged,
    StateMachine,
)

S = ClientState
LEGAL = {
    (S.DISCONNECTED, S.CONNECTING), (S.DISCONNECTED, S.CLOSED),
    (S.CONNECTING, S.CONNECTED), (S.CONNECTING, S.RECONNECTING),
    (S.CONNECTING, S.DISCONNECTED), (S.CONNECTING, S.CLOSED),
    (S.CONNECTED, S.RECONNECTING), (S.CONNECTED, S.DISCONNECTED), (S.CONNECTED, S.CLOSED),
    (S.RECONNECTING, S.CONNECTED), (S.RECONNECTING, S.DISCONNECTED),
    (S.RECONNECTING, S.CLOSED),
}


def machine_in(state: ClientState) -> StateMachine:
    machine = StateMachine()
    machine.state = state
    return machine


def test_the_table_lists_exactly_the_legal_moves() -> None:
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == LEGAL
    assert set(TRANSITIONS) == set(ClientState)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(ClientState, repeat=2)))
def test_every_pair_is_allowed_or_raises(old: ClientState, new: ClientState) -> None:
    machine = machine_in(old)
    if (old, new) in LEGAL:
        error = RuntimeError("why")
        assert machine.transition(new, error) == StateChanged(old, new, error)
        assert machine.state is new
    else:
        with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
            machine.transition(new)
        assert machine.state is old


def test_a_new_machine_is_disconnected_and_closed_is_terminal() -> None:
    assert StateMachine().state is S.DISCONNECTED
    assert TRANSITIONS[S.CLOSED] == frozenset()


@pytest.mark.parametrize("state", list(ClientState))
def test_local_calls_are_checked_against_the_state(state: ClientState) -> None:
    machine = machine_in(state)
    if state in ACCEPTS_MESSAGES:
        machine.require(ACCEPTS_MESSAGES, "call")
    else:
        with pytest.raises(IllegalTransition, match=f"cannot call while {state.value}"):
            machine.require(ACCEPTS_MESSAGES, "call")


def test_illegal_transition_is_a_client_error() -> None:
    assert issubclass(IllegalTransition, ClientError)
