"""Each event column's Blosc filter (bit or byte shuffle) is chosen by compressing its first events
both ways: on real recordings the choice is never larger than either fixed filter, and reads alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neurodata
from neurodata.cache import CacheBuilder, PartData, build_cache, layout, open_cache, shards, verify_cache

CHUNK = 1 << 16


def _build(url: Path, events: np.ndarray, codec: str) -> str:
    builder = CacheBuilder(
        str(url), "filters", {}, {"train": 1}, chunk_events=CHUNK, shard_events=1 << 18, codec=codec
    )
    return build_cache(builder, lambda split, index: PartData.from_samples([(events, 3, "rec")]))


def _event_bytes(url: str) -> int:
    return sum(f.stat().st_size for name in "txyp" for f in (Path(url) / "train" / name).rglob("c/*"))


def _filters(url: str) -> dict[str, str]:
    group = open_cache(url).location.open_group("r", "train")
    shuffles = {name: group[name].metadata.codecs[0].codecs[-1].shuffle for name in "txyp"}
    # an enum up to zarr 3.1, a plain string in 3.4
    return {name: getattr(s, "value", s) for name, s in shuffles.items()}


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
@pytest.mark.parametrize("recording", ["evt3/evt3_sample.raw", "aedat4/sample.aedat4"])
def test_the_chosen_filters_store_no_more_than_either_fixed_filter(
    codec, recording, fixtures, tmp_path, monkeypatch
):
    events = neurodata.read(fixtures / recording)
    assert len(events) <= 4 * CHUNK  # all inside the probe, so the choice is optimal per column
    chosen = _build(tmp_path / "chosen.zarr", events, codec)
    filters = _filters(chosen)
    np.testing.assert_array_equal(open_cache(chosen)["train"].sample(0)[0], events)
    assert verify_cache(chosen, deep=True).ok
    sizes = {}
    for fixed in layout.SHUFFLES:
        monkeypatch.setattr(shards, "SHUFFLES", (fixed,))
        url = _build(tmp_path / f"{fixed}.zarr", events, codec)
        assert set(_filters(url).values()) == {fixed}
        np.testing.assert_array_equal(open_cache(url)["train"].sample(0)[0], events)
        sizes[fixed] = _event_bytes(url)
    # by size, but for zstd's time column the bit shuffle must also save 1/8 byte per event
    slack = len(events) * shards.TIME_BITSHUFFLE_PENALTY if codec == "zstd" else 0
    assert _event_bytes(chosen) <= min(sizes.values()) + slack
    if codec == "zstd":  # zstd's entropy stage takes some column better byte shuffled, on both recordings
        assert "shuffle" in filters.values()
        assert filters["t"] == "shuffle"  # smaller, or not a bit per event larger


def test_choose_shuffle_measures_chunk_by_chunk():
    rng = np.random.default_rng(0)
    # bytes drawn from a skewed distribution: zstd codes whole bytes better than bit planes
    skewed = rng.choice(np.arange(128, dtype=np.uint8), 3 * CHUNK, p=np.arange(128, 0, -1) / 8256)
    assert shards.choose_shuffle(skewed, "zstd", CHUNK) == "shuffle"
    # 0/1 values in a wide type: LZ4 needs the bit shuffle to drop the empty bit planes
    bits = rng.integers(0, 2, 3 * CHUNK).astype(np.int32)
    assert shards.choose_shuffle(bits, "lz4", CHUNK) == "bitshuffle"
    assert shards.choose_shuffle(np.zeros(0, np.int32), "zstd", CHUNK) == layout.SHUFFLES[0]


def test_zstd_times_take_the_bit_shuffle_only_where_it_saves_a_bit_per_event():
    rng = np.random.default_rng(1)
    # time deltas of a dense stream, mostly 0 and sometimes 1 (as the loader benchmark's are): the
    # bit shuffle stores them a little smaller than the byte shuffle, not a bit per event smaller
    deltas = (rng.random(3 * CHUNK) < 0.05).astype(np.int32)
    sizes = {
        s: sum(
            len(
                shards.encode_chunk(
                    deltas[i : i + CHUNK], CHUNK, shards.chunk_compressor(deltas.dtype, "zstd", s)
                )
            )
            for i in range(0, len(deltas), CHUNK)
        )
        for s in layout.SHUFFLES
    }
    saving = (sizes["shuffle"] - sizes["bitshuffle"]) / len(deltas)
    assert 0 < saving < shards.TIME_BITSHUFFLE_PENALTY
    assert shards.choose_shuffle(deltas, "zstd", CHUNK) == "bitshuffle"  # by size alone
    penalty = shards.bitshuffle_penalty("t", "zstd")
    assert shards.choose_shuffle(deltas, "zstd", CHUNK, penalty) == "shuffle"
    assert shards.bitshuffle_penalty("x", "zstd") == shards.bitshuffle_penalty("t", "lz4") == 0
