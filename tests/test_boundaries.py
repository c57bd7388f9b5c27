"""Boundary rules a user depends on, each pinned exactly at its edge (one side accepted, the other not).

Each case here was found unguarded by a mutation check (``tests/mutations.py``): flipping the rule at
the edge passed every other test of its area.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import neurodata
from neurodata.cache import CacheBuilder, PartData, build_cache, open_cache, verify_cache
from neurodata.datasets.dvs128 import windows
from neurodata.errors import FormatError
from neurodata.events import make_events
from neurodata.formats import FORMATS
from neurodata.formats.base import Header
from neurodata.formats.kernels.time_base import unwrap_high, unwrap_highs
from neurodata.loaders import pad_events

# --- DVS128 Gesture label rows: start <= t < end ---------------------------------------------------


@pytest.mark.parametrize("ordered", [True, False], ids=["sorted times", "unsorted times"])
def test_label_row_takes_its_start_and_leaves_its_end(ordered):
    t = np.array([99, 100, 101, 199, 200, 201])
    events = make_events(t, np.arange(6), np.zeros(6), np.ones(6))
    if not ordered:
        events = events[[3, 0, 5, 1, 4, 2]]
    got, empty, last = windows(events, [(100, 200), (100, 100), (200, 201)])
    assert sorted(got["t"].tolist()) == [100, 101, 199]
    assert empty.size == 0  # an empty row takes nothing, not the event at 100
    assert sorted(last["t"].tolist()) == [200]


# --- sensor edges: x == width and y == height are refused, width - 1 and height - 1 accepted ---------


def decode(fmt: str, words: np.ndarray, width: int, height: int) -> np.ndarray:
    header = Header(neurodata.RecordingInfo(format=fmt, width=width, height=height), 0)
    data = np.frombuffer(words.tobytes(), np.uint8)
    events, used = FORMATS[fmt].make_decoder(header, "words").decode(data, 0, final=True)
    assert used == len(data)
    return events


W, H = 640, 480
EVT3_TIME = [0x8001]  # TIME_HIGH 1: t = 4096


def evt3(*words: int) -> np.ndarray:
    return np.array(EVT3_TIME + list(words), "<u2")


@pytest.mark.parametrize(
    "words, inside",
    [
        (evt3(0x0000 | (H - 1), 0x2000 | (W - 1)), [(4096, W - 1, H - 1, 0)]),  # ADDR_X at the corner
        (evt3(0x0000 | (H - 1), 0x3000 | (W - 12), 0x4800), [(4096, W - 1, H - 1, 0)]),  # VECT_12 top bit
        (evt3(0x0000 | 5, 0x3800 | (W - 8), 0x5080), [(4096, W - 1, 5, 1)]),  # VECT_8 top bit, ON
        (evt3(0x0000 | 5, 0x3000 | (W - 11), 0x4001), [(4096, W - 11, 5, 0)]),  # a vector past the edge, bits inside
    ],
    ids=["addr_x", "vect_12", "vect_8", "vect_12 low bit only"],
)
def test_evt3_events_at_the_last_pixel_are_accepted(words, inside):
    assert decode("evt3", words, W, H).tolist() == inside


@pytest.mark.parametrize(
    "words, message",
    [
        (evt3(0x0000 | 5, 0x2000 | W), "x >= the width"),
        (evt3(0x0000 | H, 0x2000 | 3), "height"),
        (evt3(0x0000 | 5, 0x3000 | (W - 11), 0x4800), "x >= the width"),  # VECT_12 bit 11 at x = W
        (evt3(0x0000 | 5, 0x3000 | (W - 7), 0x5080), "x >= the width"),  # VECT_8 bit 7 at x = W
        (evt3(0x0000 | H, 0x3000, 0x4001), "height"),  # a vector on row H
    ],
    ids=["addr_x x=W", "addr_x y=H", "vect_12 x=W", "vect_8 x=W", "vector y=H"],
)
def test_evt3_events_past_the_sensor_are_refused(words, message):
    with pytest.raises(FormatError, match=message):
        decode("evt3", words, W, H)


def evt2(x: int, y: int, on: int = 1) -> np.ndarray:
    return np.array([0x8000_0001, (on << 28) | (x << 11) | y], "<u4")


def test_evt2_edges():
    assert decode("evt2", evt2(W - 1, H - 1), W, H).tolist() == [(64, W - 1, H - 1, 1)]
    with pytest.raises(FormatError, match="width"):
        decode("evt2", evt2(W, 0), W, H)
    with pytest.raises(FormatError, match="height"):
        decode("evt2", evt2(0, H), W, H)


def dat(x: int, y: int) -> np.ndarray:
    return np.array([7 | (((1 << 28) | (y << 14) | x) << 32)], "<u8")


def test_dat_edges():
    assert decode("dat", dat(303, 239), 304, 240).tolist() == [(7, 303, 239, 1)]
    with pytest.raises(FormatError, match="width"):
        decode("dat", dat(304, 0), 304, 240)
    with pytest.raises(FormatError, match="height"):
        decode("dat", dat(0, 240), 304, 240)


# --- the time-base unwrap: nearest step, ties (exactly half the range) forward ------------------------


MASK = 0xFFF  # EVT 3.0's 12-bit TIME_HIGH: a range of 4096 steps, half 2048


@pytest.mark.parametrize(
    "high, raw, expected",
    [
        (0, 1, 1),
        (0, 2047, 2047),  # forward by less than half
        (0, 2048, 2048),  # exactly half: a tie goes forward
        (2048, 0, 4096),  # exactly half across the wrap: forward, a wrap is counted
        (4095, 0, 4096),  # the ordinary wrap
        (4096 * 3 + 100, 99, 4096 * 3 + 99),  # one step back: jitter, time steps back
        (4096 * 3 + 100, (100 - 2047) & MASK, 4096 * 3 + 100 - 2047),  # the largest backward jitter
        (4096 * 3 + 100, (100 - 2048) & MASK, 4096 * 3 + 100 + 2048),  # a drop of half: a wrap forward
        (4096 * 3 + 100, 100, 4096 * 3 + 100),  # the same value: no step
    ],
)
def test_unwrap_rule_at_its_edges(high, raw, expected):
    assert unwrap_high(high, raw, MASK) == expected
    assert unwrap_highs(np.array([raw]), high, MASK).tolist() == [expected]


def test_unwrap_sequence_starts_at_its_first_value_and_counts_each_wrap():
    raw = np.array([4000, 4095, 10, 2058, 4000, 5, 4])
    assert unwrap_highs(raw, None, MASK).tolist() == [4000, 4095, 4106, 6154, 8096, 8197, 8196]
    assert unwrap_highs(raw[:0], None, MASK).size == 0


# --- polarities above 1 survive the cache, on both read paths ----------------------------------------


def _part(samples, split, index):
    return PartData.from_samples(samples)


@pytest.mark.parametrize("pack", [True, False], ids=["packing allowed", "p column asked for"])
def test_polarities_above_one_round_trip_through_the_cache(tmp_path, pack):
    """Four polarity values (e.g. a colour or multi-channel sensor) cannot ride in the times' lowest bit:
    the writer keeps a ``p`` column, and both the zarr reader and the loaders' fused reader return them."""
    rng = np.random.default_rng(7)
    samples = []
    for label, n in enumerate([5000, 0, 1, 9000]):
        t = np.cumsum(rng.integers(0, 40, n))
        samples.append((make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 4, n)), label, f"s{label}"))
    url = str(tmp_path / "p4.zarr")
    builder = CacheBuilder(url, "p4", {}, {"train": 1}, chunk_events=1 << 10, shard_events=1 << 12, pack_polarities=pack)
    build_cache(builder, functools.partial(_part, samples))
    assert open_cache(url).attrs["time_coding"] != "per-sample-delta-polarity"
    loaded = neurodata.load(url)
    for i, (events, label, _) in enumerate(samples):
        np.testing.assert_array_equal(open_cache(url)["train"].sample(i)[0], events)
        got, got_label = loaded[i]
        np.testing.assert_array_equal(got, events)
        assert got_label == label and set(np.unique(got["p"])) <= {0, 1, 2, 3}
    assert set(np.unique(loaded[3][0]["p"])) == {0, 1, 2, 3}
    batch = pad_events(loaded.__getitems__(range(len(samples))))  # padded rows straight from the cache
    for i, (events, _, _) in enumerate(samples):
        n = len(events)
        assert int(batch.lengths[i]) == n
        np.testing.assert_array_equal(batch.p[i, :n].numpy(), events["p"])
        np.testing.assert_array_equal(batch.t[i, :n].numpy(), events["t"])
    assert verify_cache(url, deep=True).ok
