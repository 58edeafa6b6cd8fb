"""The --filter grammar, table-driven: what each expression keeps, and its errors."""

from __future__ import annotations

import re

import pytest

from rtctl.exceptions import ConfigError
from rtctl.inspect.filters import parse_filter
from rtctl.inspect.pairing import Row
from rtctl.protocol.tap import (
    IN,
    OUT,
    AuthRefused,
    Connected,
    Disconnected,
    Dropped,
    FrameSeen,
    Subscribed,
)

JOIN = FrameSeen.of(1, "c-1", "alice", IN, '{"jsonrpc":"2.0","method":"room.join","id":1}')
JOINED = FrameSeen.of(2, "c-1", "alice", OUT, '{"jsonrpc":"2.0","result":true,"id":1}')
BIG = FrameSeen.of(3, "c-2", "bob", IN,
                   '{"jsonrpc":"2.0","method":"state.update","params":["' + "x" * 2000 + '"]}')
FAILED = FrameSeen.of(4, "c-2", "bob", OUT,
                      '{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":9}')
BATCH = FrameSeen.of(5, "c-2", "bob", IN, '[{"jsonrpc":"2.0","method":"sys.ping","id":1},'
                                          '{"jsonrpc":"2.0","method":"room.leave","id":2}]')
JUNK = FrameSeen.of(6, "c-2", "bob", IN, "{nope")

ROWS = {
    "join": Row(JOIN, "room.join"),
    "joined": Row(JOINED, "room.join", 150),  # paired: the reply knows its method
    "big": Row(BIG, "state.update"),
    "failed": Row(FAILED),
    "batch": Row(BATCH, BATCH.method),
    "junk": Row(JUNK),
    "connect": Row(Connected(t_us=0, conn="c-1", user="alice", remote=None, local=None,
                             path="/ws", subprotocol=None)),
    "bye": Row(Disconnected(t_us=7, conn="c-1", user="alice", code=1000, reason="")),
    "lost": Row(Disconnected(t_us=8, conn="c-2", user="bob", code=1006, reason="")),
    "refused": Row(AuthRefused(t_us=9, remote=None, path="/ws", status=401, reason="expired",
                               user=None)),
    "hello": Row(Subscribed(t_us=0, queue=1)),
    "gap": Row(Dropped(t_us=0, count=1, total=1)),
}
NOTICES = {"hello", "gap"}  # the listener's own notices always show


@pytest.mark.parametrize(("expr", "kept"), [
    ("", set(ROWS)),
    ("method=room.*", {"join", "joined", "batch"}),
    ("method=room.join", {"join", "joined"}),
    ("method!=room.*", {"big"}),
    ("method=sys.ping|state.*", {"big", "batch"}),
    ("user=alice", {"join", "joined", "connect", "bye"}),
    ("user=b*", {"big", "failed", "batch", "junk", "lost"}),
    ("conn=c-1", {"join", "joined", "connect", "bye"}),
    ("dir=in", {"join", "big", "batch", "junk"}),
    ("dir=in|out", {"join", "joined", "big", "failed", "batch", "junk"}),
    ("kind=error", {"failed"}),
    ("kind=batch|invalid", {"batch", "junk"}),
    ("errors", {"failed", "junk", "lost", "refused"}),
    ("size>1KB", {"big"}),
    ("size<=40", {"joined", "junk"}),
    ("user=alice dir=out", {"joined"}),
    ("user=bob and errors", {"failed", "junk", "lost"}),
    ("dir=out AND method=room.*", {"joined"}),
])
def test_filter_keeps(expr: str, kept: set[str]) -> None:
    matches = parse_filter(expr).matches
    assert {name for name, row in ROWS.items() if matches(row)} == kept | NOTICES


@pytest.mark.parametrize(("expr", "message"), [
    ("room.*", "filter: 'room.*' is not a term"),
    ("methd=x", "unknown field 'methd'"),
    ("method=", "has no value after ="),
    ("method>x", "method takes = or !=, not >"),
    ("dir=sideways", "dir is one of in, out, not 'sideways'"),
    ("kind=reply", "kind is one of request, notification"),
    ("size>lots", "filter: 'size>lots': size 'lots' is not a number"),
])
def test_bad_filters_are_one_clear_sentence(expr: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_filter(expr)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("filter: ")
