"""What the fuzz suite generates, and the settings that keep it deterministic for CI.

``FUZZ`` derandomizes (the same examples on every run, no example database
written), drops the per-example deadline (a CI machine's hiccup is no bug)
and bounds the examples so the whole suite takes seconds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from rtctl.protocol.codes import CloseCode, ErrorCode

__all__ = ["DOCUMENTED_CLOSES", "DOCUMENTED_ERRORS", "FUZZ", "json_text", "json_values",
           "requests", "unicode_values"]

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=150,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

DOCUMENTED_ERRORS = frozenset(int(code) for code in ErrorCode)
DOCUMENTED_CLOSES = frozenset(int(code) for code in CloseCode)

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def _values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | _INT64 | _FLOATS | text
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(text, inner, max_size=4), max_leaves=12)


# Any code point, lone surrogates (category Cs) included: what a JavaScript string may hold.
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=8)
unicode_values = _values(st.text(max_size=8))  # text UTF-8 can carry
json_values = _values(_ANY_TEXT)


def _escaped(value: Any) -> str:
    """JSON text of ``value``; non-ASCII escaped, so a lone surrogate is a ``\\udXXX`` escape."""
    return json.dumps(value, ensure_ascii=True)


_ID = st.none() | _INT64 | _ANY_TEXT | st.booleans() | _FLOATS
_METHODS = st.sampled_from(["sys.echo", "sys.ping", "presence.get", "room.publish",
                            "rpc.discover", "nope"]) | _ANY_TEXT
_MAYBE_REQUEST = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0"]), "method": _METHODS},
    optional={"params": json_values, "id": _ID})

# JSON text a client might send: requests (some broken), batches of them, and any JSON.
json_text = st.one_of(
    _MAYBE_REQUEST.map(_escaped),
    st.lists(_MAYBE_REQUEST, max_size=5).map(_escaped),
    json_values.map(_escaped),
)

requests = st.builds(
    lambda method, params, request_id: (method, params, request_id),
    st.text(min_size=1, max_size=12),
    st.none() | st.lists(unicode_values, max_size=4)
    | st.dictionaries(st.text(max_size=8), unicode_values, max_size=4),
    st.none() | _INT64 | st.text(max_size=8),
)
