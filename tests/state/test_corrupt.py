"""A corrupt or truncated message is refused whole: one StateError naming the problem,
and the decoder's state and version exactly as they were (never half-applied).

The hand-made messages follow the wire format (docs/state-sync.md) for ``Tiny`` at
version 1; each changes ``hp`` first, so a decoder that applied as it read would show it.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from rtctl.state import Decoder, Encoder, Schema, StateError, float32, int16, uint8
from rtctl.state.wire import write_varint
from tests.state.schemas import Unit, World, exact


class Spot(Schema):
    x: float32
    n: int16


class Tiny(Schema):
    hp: uint8  # field 0
    on: bool  # 1
    name: str  # 2
    spot: Spot  # 3
    bag: dict[str, uint8]  # 4
    seq: list[uint8]  # 5


def _version_1() -> Encoder:
    """An encoder whose state went from the defaults to the one these messages start from."""
    tiny = Tiny()
    enc = Encoder(tiny)
    tiny.hp, tiny.on, tiny.name, tiny.spot = 10, True, "ab", Spot(x=1.0, n=-2)
    tiny.bag, tiny.seq = {"a": 1, "b": 2}, [7, 8]
    enc.commit()
    return enc


def _varint(value: int) -> bytes:
    out = bytearray()
    write_varint(out, value)
    return bytes(out)


def _text(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(len(data)) + data


def _fields(*indexes: int) -> bytes:
    return _varint(sum(1 << index for index in indexes))


ABSOLUTE = b"\x03\x02\x01"  # a delta to version 2 from version 1, values absolute
RELATIVE = b"\x02\x02\x01"  # the same, numbers relative
HP = b"\x0b"  # hp = 11
FULL_BODY = (b"\x0a\x01" + _text("ab") + struct.pack("<f", 1.0) + b"\x03"
             + b"\x02" + _text("a") + b"\x01" + _text("b") + b"\x02" + b"\x02\x07\x08")

CORRUPT: dict[str, tuple[bytes, str]] = {
    "unknown kind": (b"\x07\x02\x01" + _fields(0) + HP, "unknown state message kind 0x07"),
    "back 0": (b"\x03\x02\x00" + _fields(0) + HP, "goes back 0"),
    "mask names a sixth field": (ABSOLUTE + _fields(0, 6) + HP,
                                 "field mask 0x41 names a field Tiny does not have"),
    "trailing bytes": (ABSOLUTE + _fields(0) + HP + b"\x00", "1 bytes left over"),
    "varint too long": (ABSOLUTE + _fields(0, 4) + HP + b"\x80" * 10 + b"\x01",
                        "varint longer than 10 bytes"),
    "uint8 300 in a full state": (b"\x01\x02" + _varint(300) + FULL_BODY[1:],
                                  "uint8 value 300 out of range"),
    "uint8 300 in a delta": (ABSOLUTE + _fields(0, 4) + HP + b"\x08\x00" + _varint(300),
                             "uint8 value 300 out of range"),
    "uint8 difference of 300": (RELATIVE + _fields(0) + _varint(600),  # zigzag(300)
                                "uint8 difference 300 wider than 8 bits"),
    "float32 difference past 32 bits": (RELATIVE + _fields(0, 3) + HP + b"\x00" + _fields(0)
                                        + _varint(2**33), "float32 difference wider than 32"),
    "bool byte 2": (ABSOLUTE + _fields(0, 1) + HP + b"\x02", "bool byte 2"),
    "invalid UTF-8": (ABSOLUTE + _fields(0, 2) + HP + _text(b"\xff\xfe"), "not UTF-8"),
    "nested tag 2": (ABSOLUTE + _fields(0, 3) + HP + b"\x02", "nested state tag 2"),
    "removal of an absent key": (ABSOLUTE + _fields(0, 4) + HP + b"\x04\x01" + _text("zz"),
                                 "removal of key 'zz', which the map does not hold"),
    "a key removed twice": (ABSOLUTE + _fields(0, 4) + HP + b"\x04\x02" + _text("a") * 2,
                            "removal of key 'a'"),
    "a key added twice": (ABSOLUTE + _fields(0, 4) + HP + b"\x02\x02"
                          + (_text("c") + b"\x01") * 2, "added twice"),
    "a changed entry past the end": (ABSOLUTE + _fields(0, 4) + HP + b"\x08\x05\x01",
                                     "changed entry at position 5 of 2"),
    "a replaced entry past the end": (ABSOLUTE + _fields(0, 4) + HP + b"\x01\x01\x02\x01",
                                      "replaced entry at position 2 of 2"),
    "a changed entry past the end after removals": (
        ABSOLUTE + _fields(0, 4) + HP + b"\x0c\x01" + _text("a") + b"\x01\x01",
        "changed entry at position 1 of 1"),
    "a list element past the end": (ABSOLUTE + _fields(0, 5) + HP + b"\x04\x02\x01",
                                    "changed element at position 2 of 2"),
    "a whole list with more": (ABSOLUTE + _fields(0, 5) + HP + b"\x06\x00",
                               "list head 6: a whole list has no other entries"),
    "a count past the end": (ABSOLUTE + _fields(0, 4) + HP + b"\x04" + _varint(100),
                             "removed keys of 100 exceeds the 0 bytes left"),
    "a string past the end": (ABSOLUTE + _fields(0, 2) + HP + _varint(50) + b"ab",
                              "string length of 50 exceeds the 2 bytes left"),
    "a key twice in a full map": (b"\x01\x02" + FULL_BODY.replace(_text("b"), _text("a")),
                                  "key 'a' appears twice"),
    "truncated": (ABSOLUTE + _fields(0, 2) + HP + _varint(3) + b"ab"[:1], "exceeds"),
    "cut after the header": (ABSOLUTE, "truncated at offset 3"),
}


def _held() -> tuple[Decoder, Any]:
    """A decoder holding the state of :func:`_version_1`, and its state as exact plain data."""
    dec = Decoder(Tiny)
    dec.apply(_version_1().full())
    return dec, exact(dec.state.to_dict())


def test_the_hand_made_layout_matches_the_encoder() -> None:
    """The messages below are right but for their one fault: check the base they build on."""
    assert _version_1().full() == b"\x01\x01" + FULL_BODY
    dec, _ = _held()
    # bag: head = 1 changed << 3 | removed 4 | added 2; "a" removed; "c" added = 5;
    # the entry at position 0 of what is kept ("b") changed to 9
    dec.apply(ABSOLUTE + _fields(0, 4) + HP + b"\x0e\x01" + _text("a") + b"\x01" + _text("c")
              + b"\x05" + b"\x00\x09")
    assert dec.state.to_dict()["bag"] == {"b": 9, "c": 5}
    assert dec.state.hp == 11


def _recorded() -> tuple[list[tuple[bytes, bytes]], World]:
    """Real messages of every kind, each with a full state of the version it starts from."""
    world = World()
    world.leaf.text = "héllo 🙂"
    world.units["a"] = Unit(hp=1, x=0.5, bag={"k": -3}, tags=["t"])
    world.units["b"] = Unit(hp=2)
    world.scores.update({"a": 1.0, "b": float("nan")})
    world.squad.append(Unit(hp=3))
    world.path.extend([1, -1])
    enc = Encoder(world)
    full = enc.full()
    pairs = [(b"", full)]
    world.units["a"].x = -2.25
    world.units["a"].bag["j"] = 4
    del world.units["b"]
    world.units["c"] = Unit(tags=["x", "y"])
    world.units["a"] = world.units.pop("a")
    world.scores["b"] = 3.0
    world.squad[0].hp = 4
    world.path[1] = 300
    world.leaf.f64 = -0.0
    pairs.append((full, enc.delta()))
    base = enc.full()
    world.units["c"] = Unit(hp=9)
    world.squad.append(Unit())
    world.leaf = world.leaf.__class__(u64=2**64 - 1)
    pairs.append((base, enc.delta()))
    pairs.append((full, enc.since(0)))
    return pairs, world


def _at(full: bytes) -> Decoder:
    dec = Decoder(World)
    if full:
        dec.apply(full)
    return dec


def test_the_recorded_messages_apply() -> None:
    pairs, world = _recorded()
    for base, message in pairs:
        dec = _at(base)
        dec.apply(message)
    assert exact(dec.state.to_dict()) == exact(world.to_dict())


def test_every_prefix_of_a_real_message_is_refused() -> None:
    pairs, _ = _recorded()
    for base, message in pairs:
        dec = _at(base)
        before = (dec.version, exact(dec.state.to_dict()))
        for size in range(1, len(message)):
            with pytest.raises(StateError, match=r"truncated|exceeds"):
                dec.apply(message[:size])
            assert (dec.version, exact(dec.state.to_dict())) == before


def test_flipped_bytes_are_refused_or_make_a_valid_state() -> None:
    """Seeded flips of 1 to 3 bytes: a StateError with nothing applied, or (when the flip
    lands on a value) a state that is whole and encodes again; never another exception."""
    rng = random.Random(11)
    refused = 0
    pairs, _ = _recorded()
    for base, message in pairs:
        for _ in range(150):
            damaged = bytearray(message)
            for position in rng.sample(range(len(damaged)), rng.randint(1, 3)):
                damaged[position] ^= rng.randint(1, 255)
            dec = _at(base)
            before = (dec.version, exact(dec.state.to_dict()))
            try:
                dec.apply(bytes(damaged))
            except StateError:
                refused += 1
                assert (dec.version, exact(dec.state.to_dict())) == before
                continue
            again = Decoder(World)
            again.apply(Encoder(dec.state).full())
            assert exact(again.state.to_dict()) == exact(dec.state.to_dict())
    assert refused >= 300  # most of the 600 flips break the structure, not just a value


JSON_CORRUPT: dict[str, tuple[str, str]] = {
    "not JSON": ('{"version": 2, "base": 1, "patch": {"hp": 11', "not JSON"),
    "a bare NaN": ('{"version": 2, "base": 1, "patch": {"hp": 11, "spot": {"x": NaN}}}',
                   "not JSON"),
    "a lone surrogate": ('{"version": 2, "base": 1, "patch": {"hp": 11, "name": "\\ud800"}}',
                         "not JSON"),
    "not an object": ("[2, 1]", "an object with an integer 'version'"),
    "no version": ('{"base": 1, "patch": {"hp": 11}}', "integer 'version'"),
    "no base": ('{"version": 2, "patch": {"hp": 11}}', "needs an integer 'base'"),
    "base ahead": ('{"version": 2, "base": 2, "patch": {"hp": 11}}', "base' below its version 2"),
    "an unknown field": ('{"version": 2, "base": 1, "patch": {"hp": 11, "mp": 1}}',
                         "Tiny has no field 'mp'"),
    "uint8 300": ('{"version": 2, "base": 1, "patch": {"on": false, "hp": 300}}',
                  "300 does not fit uint8"),
    "a string for an int": ('{"version": 2, "base": 1, "patch": {"hp": 11, "seq": ["1"]}}',
                            r"patch\.seq\[0\]|uint8 field takes an int"),
    "true for an int": ('{"version": 2, "base": 1, "patch": {"hp": 11, "bag": {"a": true}}}',
                        "uint8 field takes an int, not bool"),
    "null for a field": ('{"version": 2, "base": 1, "patch": {"hp": 11, "name": null}}',
                         "str field takes a str, not NoneType"),
    "null for a nested state": ('{"version": 2, "base": 1, "patch": {"hp": 11, "spot": null}}',
                                r"patch\.spot must be a JSON object"),
    "removal of an absent key": (
        '{"version": 2, "base": 1, "patch": {"hp": 11, "bag": {"a": 5, "zz": null}}}',
        r"patch\.bag\.zz: removal of a key the map does not hold"),
    "an object for a list": ('{"version": 2, "base": 1, "patch": {"hp": 11, "seq": {}}}',
                             r"patch\.seq must be a JSON array"),
    "float32 beyond range": ('{"version": 2, "base": 1, "patch": {"hp": 11, "spot": {"x": 1e39}}}',
                             "beyond the range of float32"),
    "Infinity for an int": ('{"version": 2, "base": 1, "patch": {"hp": 11, "spot": {"n": '
                            '"Infinity"}}}', "int16 field takes an int, not str"),
    "a full state missing a field": ('{"version": 2, "state": {"hp": 11}}', "missing"),
    "a full state with an extra field": (
        '{"version": 2, "state": {"hp": 1, "on": true, "name": "", "spot": {"x": 0, "n": 0},'
        ' "bag": {}, "seq": [], "mp": 0}}', r"unknown \['mp'\]"),
}


@pytest.mark.parametrize(("message", "error"), [*CORRUPT.values(), *JSON_CORRUPT.values()],
                         ids=[*CORRUPT, *(f"json: {name}" for name in JSON_CORRUPT)])
def test_a_corrupt_message_is_refused_whole(message: bytes | str, error: str) -> None:
    dec, before = _held()
    with pytest.raises(StateError, match=error):
        dec.apply(message)
    assert dec.version == 1
    assert exact(dec.state.to_dict()) == before


def test_an_entry_both_replaced_and_changed_is_refused_whole() -> None:
    """The changed part is read against the old entry; applied to the new one it would fail
    half-way (a review found it raising IndexError after the root's tick was set)."""
    world = World()
    world.units["a"] = Unit(tags=["x", "y"])
    encoder, decoder = Encoder(world), Decoder(World)
    decoder.apply(encoder.full())
    before = decoder.state.to_dict()
    unit_full = bytes([0]) + struct.pack("<f", 0.0) + bytes([0, 0])
    message = (bytes([0x03, 1, 1, 0b1001, 7,  # absolute delta to v1: tick = 7, units changed
                      0b1001, 1, 0])  # units: one changed entry, a replaced section: pos 0
               + unit_full
               + bytes([0, 0b1000, 0b100, 1, 1]) + b"z")  # changed pos 0: tags[1] = "z"
    with pytest.raises(StateError, match="both replaced and changed"):
        decoder.apply(message)
    assert (decoder.version, decoder.state.to_dict()) == (0, before)
