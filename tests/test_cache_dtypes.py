"""Narrow stored event columns: the narrowest dtype holding every value, chosen from the parts' ranges."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

import neurodata
from neurodata.cache import (
    CacheBuilder,
    CacheError,
    PartData,
    build_cache,
    open_cache,
    time_coding,
    verify_cache,
)
from neurodata.cache.layout import EVENT_DTYPES, narrowest_dtypes
from neurodata.cache.narrowing import narrowed
from neurodata.cache.reader import decode_range
from neurodata.events import make_events

I4, I8, U1, U2 = (np.dtype(d) for d in ("<i4", "<i8", "u1", "<u2"))


def test_narrowest_dtypes_takes_the_first_candidate_that_holds_every_part():
    edge = {"t": [-(2**31), 2**31 - 1], "x": [0, 255], "y": [3, 255], "p": [0, 1]}
    empty = dict.fromkeys(edge)
    assert narrowest_dtypes([edge, empty]) == {"t": I4, "x": U1, "y": U1, "p": U1}
    assert narrowest_dtypes([empty]) == {"t": I4, "x": U1, "y": U1, "p": U1}
    wider = {**edge, "t": [0, 2**31], "x": [0, 256]}
    assert narrowest_dtypes([edge, wider]) == {"t": I8, "x": U2, "y": U1, "p": U1}
    assert narrowest_dtypes([{**edge, "t": [-(2**31) - 1, 0]}])["t"] == I8


def _part(samples, split, index):
    return PartData.from_samples(samples)


def _build(url: Path, samples) -> str:
    builder = CacheBuilder(str(url), "dtypes", {}, {"train": 1}, chunk_events=1 << 14, shard_events=1 << 16)
    return build_cache(builder, functools.partial(_part, samples))


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def dvs128_samples(fixtures: Path) -> list[tuple[np.ndarray, int, str]]:
    """Real recordings on a 128x128 sensor: the AEDAT 3.1 DVS128-Gesture-layout fixture read by our
    decoder, and the EVT 3.0 golden decode with x, y taken modulo 128 (its real timing kept)."""
    gesture = neurodata.read(fixtures / "aedat31" / "synthetic_user00_fluorescent.aedat")
    evt3 = np.load(fixtures / "evt3" / "evt3_sample.npy", allow_pickle=False)
    evt3 = make_events(evt3["t"], evt3["x"] % 128, evt3["y"] % 128, evt3["p"])
    return [(gesture, 2, "gesture"), (gesture[:0], 0, "none"), (evt3, 7, "evt3")]


def test_dvs128_events_are_stored_narrow_and_read_back_exactly(tmp_path, fixtures, monkeypatch):
    samples = dvs128_samples(fixtures)
    url = _build(tmp_path / "narrow.zarr", samples)
    cache = open_cache(url)
    # the polarities ride in the times (doubled deltas still fit int32): no p column
    assert cache.attrs["event_dtypes"] == {"t": "<i4", "x": "|u1", "y": "|u1"}
    assert cache.attrs["time_coding"] == "per-sample-delta-polarity"
    group = cache.location.open_group("r", "train")
    assert [group[f].dtype for f in ("t", "x", "y")] == [I4, U1, U1] and "p" not in group
    for i, (events, label, _) in enumerate(samples):
        got, got_label = cache["train"].sample(i)
        assert got.dtype == neurodata.EVENT_DTYPE and got_label == label
        np.testing.assert_array_equal(got, events)
    assert verify_cache(url, deep=True).ok

    # the same events in the widest dtypes (the layout before narrowing): read alike, take more bytes
    monkeypatch.setattr(time_coding, "narrowest_dtypes", lambda ranges: dict(EVENT_DTYPES))
    wide = _build(tmp_path / "wide.zarr", samples)
    assert open_cache(wide).attrs["event_dtypes"] == {"t": "<i8", "x": "<u2", "y": "<u2"}
    for i, (events, _, _) in enumerate(samples):
        np.testing.assert_array_equal(open_cache(wide)["train"].sample(i)[0], events)
    assert verify_cache(wide, deep=True).ok
    assert _tree_bytes(url) < _tree_bytes(wide)


def test_columns_that_do_not_fit_stay_wide(tmp_path, fixtures):
    """A sample starting after 2**31 us, one with a 2**31 us gap, and a 1280-pixel-wide sensor."""
    evt3 = np.load(fixtures / "evt3" / "evt3_sample.npy", allow_pickle=False)
    evt3 = make_events(evt3["t"], evt3["x"], evt3["y"], evt3["p"])
    late = evt3[:1000].copy()
    late["t"] += 2**31
    gap = evt3[:1000].copy()
    gap["t"][500:] += 2**31
    samples = [(evt3, 1, "evt3"), (late, 2, "late"), (gap, 3, "gap")]
    url = _build(tmp_path / "wide.zarr", samples)
    cache = open_cache(url)
    assert cache.attrs["event_dtypes"] == {"t": "<i8", "x": "<u2", "y": "<u2"}
    for i, (events, _, _) in enumerate(samples):
        np.testing.assert_array_equal(cache["train"].sample(i)[0], events)


def _one_part_each(parts, split, index):
    return PartData.from_samples(parts[index])


def test_parts_staged_narrow_and_wide_fill_one_shard(tmp_path, fixtures):
    """Each part is staged in its own narrowest dtypes; a shard holding a narrow part (128x128, short
    times) and a wide one (1280 pixels, a sample after 2**31 us) reads both back exactly."""
    evt3 = np.load(fixtures / "evt3" / "evt3_sample.npy", allow_pickle=False)
    narrow = make_events(evt3["t"][:3000], evt3["x"][:3000] % 128, evt3["y"][:3000] % 128, evt3["p"][:3000])
    wide = make_events(evt3["t"][:3000] + 2**31, evt3["x"][:3000], evt3["y"][:3000], evt3["p"][:3000])
    parts = [[(narrow, 0, "narrow")], [(wide, 1, "wide")], [(narrow, 2, "narrow again")]]
    builder = CacheBuilder(str(tmp_path / "mixed.zarr"), "mixed", {}, {"train": 3}, chunk_events=1 << 10)
    builder.start()
    for index in range(3):
        builder.write_part("train", index, _one_part_each(parts, "train", index))
    parts_dir = tmp_path / "mixed.zarr.build" / "parts" / "train"
    staged = [json.loads((parts_dir / f"{i:06d}" / "done.json").read_text())["staged_dtypes"] for i in range(3)]
    assert [d[:2] for d in staged] == [["<i4", "|u1"], ["<i8", "<u2"], ["<i4", "|u1"]]  # t, x
    cache = open_cache(build_cache(builder, functools.partial(_one_part_each, parts)))
    assert cache.attrs["event_dtypes"]["t"] == "<i8" and cache.attrs["event_dtypes"]["x"] == "<u2"
    for i, part in enumerate(parts):
        np.testing.assert_array_equal(cache["train"].sample(i)[0], part[0][0])


def test_polarities_ride_in_the_times_only_where_every_value_allows_it():
    """``delta * 2 + p`` needs 0/1 polarities and deltas within +-2**62; its range is twice the
    deltas', so a gap of 2**30 us that int32 holds as a delta needs int64 packed."""
    part = {"t": [-5, 2**30], "x": [0, 127], "y": [0, 127], "p": [0, 1]}
    empty = dict.fromkeys(part)
    assert time_coding.stored_dtypes([part, empty]) == ("per-sample-delta-polarity", {"t": I8, "x": U1, "y": U1})
    assert time_coding.stored_dtypes([part], pack_polarities=False) == (
        "per-sample-delta",
        {"t": I4, "x": U1, "y": U1, "p": U1},
    )
    small = {**part, "t": [-5, 2**30 - 1]}
    assert time_coding.stored_dtypes([small])[1]["t"] == I4  # 2 * (2**30 - 1) + 1 fits int32
    for bad in ({**part, "p": [0, 2]}, {**part, "t": [0, 2**62]}, {**part, "t": [-(2**62) - 1, 0]}):
        assert time_coding.stored_dtypes([part, bad])[0] == "per-sample-delta"
    assert time_coding.stored_dtypes([{**part, "t": [-(2**62), 2**62 - 1]}])[0] == "per-sample-delta-polarity"


def test_decode_range_takes_narrow_wide_and_other_integer_columns_alike(fixtures):
    events = dvs128_samples(fixtures)[0][0]
    coded = np.diff(events["t"], prepend=0)
    offsets = np.array([0, len(events)])
    wide = {"t": coded, "x": events["x"], "y": events["y"], "p": events["p"]}
    narrow = {
        "t": coded.astype(np.int32),
        "x": events["x"].astype(np.uint8),
        "y": events["y"].astype(np.uint8),
    }
    other = {"t": coded.astype(np.int16) if coded.max() < 2**15 else coded, "x": events["x"].astype(np.int16)}
    for columns in (wide, {**wide, **narrow}, {**wide, **other}):
        np.testing.assert_array_equal(decode_range(columns, offsets), events)


def test_a_value_outside_the_chosen_dtype_is_refused(tmp_path):
    location = str(tmp_path / "c.zarr")
    column = np.array([0, 255, 256], dtype=np.uint16)
    with pytest.raises(CacheError, match="'x' has values outside uint8"):
        narrowed(column, np.dtype("u1"), location, "x")
    np.testing.assert_array_equal(narrowed(column[:2], np.dtype("u1"), location, "x"), [0, 255])


def test_verify_reports_arrays_that_disagree_with_event_dtypes(tmp_path, fixtures):
    url = Path(_build(tmp_path / "c.zarr", dvs128_samples(fixtures)))
    meta_path = url / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["neurodata_cache"]["event_dtypes"]["t"] = "<i8"
    meta_path.write_text(json.dumps(meta))
    problems = verify_cache(str(url)).problems
    assert problems == ["train/t: stored as int32, the attributes say <i8"]
    del meta["attributes"]["neurodata_cache"]["event_dtypes"]  # as written before the attribute existed
    meta_path.write_text(json.dumps(meta))
    assert verify_cache(str(url), deep=True).ok


def test_a_missing_event_array_is_named(tmp_path, fixtures):
    """A cache whose time coding says ``p`` has its own column, with that array gone: the reader
    names the split and the array instead of failing deep inside zarr; the fused loader too."""
    import shutil

    from neurodata.loaders import load

    builder = CacheBuilder(
        str(tmp_path / "c.zarr"),
        "dtypes",
        {},
        {"train": 1},
        chunk_events=1 << 14,
        shard_events=1 << 16,
        pack_polarities=False,
    )
    url = build_cache(builder, functools.partial(_part, dvs128_samples(fixtures)))
    assert open_cache(url).attrs["time_coding"] == "per-sample-delta"
    shutil.rmtree(Path(url) / "train" / "p")
    with pytest.raises(CacheError, match=r"split 'train': train/p/c/0 is missing"):  # against the manifest
        open_cache(url)["train"].sample(0)
    with pytest.raises(CacheError, match=r"split 'train': train/p/c/0 is missing"):
        load(url)[0]
