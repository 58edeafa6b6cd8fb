"""Network metrics: exact numbers from hand-made samples."""

from __future__ import annotations

import pytest

from rtctl.client.netstats import MIN_RTO, NetStats, SequenceGap


def pings(stats: NetStats, samples: list[tuple[float, float, float]]) -> None:
    for sent, received, server in samples:
        stats.observe_ping(sent, received, server)


def test_rtt_ewma_min_and_jitter() -> None:
    stats = NetStats()
    pings(stats, [(0.0, 0.100, 0.0), (1.0, 1.200, 0.0), (2.0, 2.050, 0.0)])
    snap = stats.snapshot(3.0)
    assert snap.rtt == pytest.approx(0.050)
    assert snap.rtt_min == pytest.approx(0.050)
    srtt = 0.1 + (0.2 - 0.1) / 8
    srtt += (0.05 - srtt) / 8
    assert snap.srtt == pytest.approx(srtt)
    jitter = 0.1 / 16
    jitter += (0.15 - jitter) / 16
    assert snap.jitter == pytest.approx(jitter)
    assert snap.pings == 3


def test_clock_offset_trusts_the_fastest_recent_ping() -> None:
    stats = NetStats()
    assert stats.clock_offset is None
    # The server clock is 5 s ahead; the slow ping had its reply leg delayed.
    stats.observe_ping(10.0, 10.4, 15.05)   # rtt 0.4, naive offset 4.85
    stats.observe_ping(20.0, 20.02, 25.01)  # rtt 0.02, offset 5.0
    stats.observe_ping(30.0, 30.3, 35.1)    # rtt 0.3, offset 4.95
    assert stats.clock_offset == pytest.approx(5.0)


def test_offset_samples_age_out_after_eight() -> None:
    stats = NetStats()
    stats.observe_ping(0.0, 0.001, 100.0)  # best ever, but old
    for i in range(8):
        stats.observe_ping(i + 1.0, i + 1.1, i + 1.05 + 2.0)
    assert stats.clock_offset == pytest.approx(2.0)


def test_a_clock_that_stepped_back_gives_no_sample() -> None:
    stats = NetStats()
    assert stats.observe_ping(5.0, 4.0, 0.0) is None
    assert stats.snapshot(5.0).pings == 0


def test_rates_cover_the_window_and_totals_everything() -> None:
    stats = NetStats(window=2.0)
    for t in (0.5, 1.0, 1.5, 2.5):
        stats.record_out(100, t)
    stats.record_in(10, 2.4)
    snap = stats.snapshot(2.6)  # the window is (0.6, 2.6]: 1.0, 1.5, 2.5
    assert (snap.messages_out, snap.bytes_out) == (4, 400)
    assert snap.messages_out_per_s == pytest.approx(1.5)
    assert snap.bytes_out_per_s == pytest.approx(150)
    assert (snap.messages_in_per_s, snap.bytes_in_per_s) == (0.5, 5.0)
    assert stats.snapshot(10.0).bytes_out_per_s == 0


@pytest.mark.parametrize(("seqs", "gaps", "gaps_n", "missing", "duplicates"), [
    ([1, 2, 3], [None, None, None], 0, 0, 0),
    ([1, 2, 5], [None, None, SequenceGap("s", 3, 5)], 1, 2, 0),
    ([7, 8, 8, 6, 9], [None] * 5, 0, 0, 2),
    ([10, 12, 15], [None, SequenceGap("s", 11, 12), SequenceGap("s", 13, 15)], 2, 3, 0),
])
def test_sequence_gaps(seqs: list[int], gaps: list[SequenceGap | None], gaps_n: int,
                       missing: int, duplicates: int) -> None:
    stats = NetStats()
    assert [stats.observe_sequence("s", seq) for seq in seqs] == gaps
    snap = stats.snapshot(0.0)
    assert (snap.sequence_gaps, snap.missing, snap.duplicates) == (gaps_n, missing, duplicates)


def test_streams_are_tracked_apart() -> None:
    stats = NetStats()
    stats.observe_sequence("room:a", 1)
    stats.observe_sequence("room:b", 5)
    assert stats.observe_sequence("room:a", 2) is None
    gap = stats.observe_sequence("room:b", 7)
    assert gap == SequenceGap("room:b", 6, 7)
    assert gap.missing == 1


@pytest.mark.parametrize(("rtts", "rto"), [
    ([], None),
    ([0.010], MIN_RTO),  # srtt + 4 × 0 is below the floor
    ([0.300], 0.300),
    ([0.300, 0.316], 0.302 + 4 * 0.001),  # srtt 0.300 + 0.016/8, jitter 0.016/16
])
def test_the_retransmission_timeout_follows_rfc_6298(rtts: list[float],
                                                      rto: float | None) -> None:
    stats = NetStats()
    for rtt in rtts:
        stats.observe_ping(0.0, rtt, rtt / 2)
    assert stats.snapshot(0.0).retransmission_timeout() == pytest.approx(rto)
