"""Each event column's coding (Blosc filter, bit or byte shuffle; for zstd's polarities also LZ4HC)
is chosen by compressing its first events each way: on real recordings the choice is never larger
than either fixed filter but by the documented allowances for codings that decode faster, and
reads alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from zarr.codecs import BloscCodec

import neurodata
from neurodata.cache import CacheBuilder, PartData, build_cache, layout, open_cache, shards, verify_cache

CHUNK = 1 << 16


def _build(url: Path, events: np.ndarray, codec: str) -> str:
    """A cache of ``events`` with a ``p`` column (not packed into the times), whose coding is chosen too."""
    builder = CacheBuilder(
        str(url),
        "filters",
        {},
        {"train": 1},
        chunk_events=CHUNK,
        shard_events=1 << 18,
        codec=codec,
        pack_polarities=False,
    )
    return build_cache(builder, lambda split, index: PartData.from_samples([(events, 3, "rec")]))


def _event_bytes(url: str) -> int:
    return sum(f.stat().st_size for name in "txyp" for f in (Path(url) / "train" / name).rglob("c/*"))


def _codings(url: str) -> dict[str, tuple[str, str]]:
    """(Blosc compressor, filter) of each event column, from its zarr metadata."""
    group = open_cache(url).location.open_group("r", "train")
    blosc = {  # the inner codecs: bytes, blosc, crc32c (layout 4)
        name: next(c for c in group[name].metadata.codecs[0].codecs if isinstance(c, BloscCodec))
        for name in "txyp"
    }
    # enums up to zarr 3.1, plain strings in 3.4
    return {
        name: (getattr(b.cname, "value", b.cname), getattr(b.shuffle, "value", b.shuffle))
        for name, b in blosc.items()
    }


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
@pytest.mark.parametrize("recording", ["evt3/evt3_sample.raw", "aedat4/sample.aedat4"])
def test_the_chosen_filters_store_no_more_than_either_fixed_filter(
    codec, recording, fixtures, tmp_path, monkeypatch
):
    events = neurodata.read(fixtures / recording)
    assert len(events) <= 4 * CHUNK  # all inside the probe, so the choice is optimal per column
    chosen = _build(tmp_path / "chosen.zarr", events, codec)
    codings = _codings(chosen)
    filters = {name: shuffle for name, (_, shuffle) in codings.items()}
    np.testing.assert_array_equal(open_cache(chosen)["train"].sample(0)[0], events)
    assert verify_cache(chosen, deep=True).ok
    sizes = {}
    for fixed in layout.SHUFFLES:
        monkeypatch.setattr(shards, "SHUFFLES", (fixed,))
        monkeypatch.setattr(shards, "CODING_PENALTIES", {})
        url = _build(tmp_path / f"{fixed}.zarr", events, codec)
        assert set(_codings(url).values()) == {(layout.EVENT_CODECS[codec][0], fixed)}
        np.testing.assert_array_equal(open_cache(url)["train"].sample(0)[0], events)
        sizes[fixed] = _event_bytes(url)
    # by size, but for zstd's times the bit shuffle must also save 1/8 byte per event, and for its
    # polarities zstd must save 1/64 byte per event over LZ4HC
    slack = len(events) * (1 / 8 + 1 / 64) if codec == "zstd" else 0
    assert _event_bytes(chosen) <= min(sizes.values()) + slack
    if codec == "zstd":  # zstd's entropy stage takes some column better byte shuffled, on both recordings
        assert "shuffle" in filters.values()
        assert filters["t"] == "shuffle"  # smaller, or not a bit per event larger
        assert codings["p"] == ("lz4hc", "bitshuffle")  # bit planes of 0/1: LZ4HC as small as zstd
        assert {codings[name][0] for name in "txy"} == {"zstd"}


def test_choose_coding_measures_chunk_by_chunk():
    rng = np.random.default_rng(0)
    # bytes drawn from a skewed distribution: zstd codes whole bytes better than bit planes
    skewed = rng.choice(np.arange(128, dtype=np.uint8), 3 * CHUNK, p=np.arange(128, 0, -1) / 8256)
    assert shards.choose_coding(skewed, "x", "zstd", CHUNK) == ("zstd", "shuffle")
    # 0/1 values in a wide type: LZ4 needs the bit shuffle to drop the empty bit planes
    bits = rng.integers(0, 2, 3 * CHUNK).astype(np.int32)
    assert shards.choose_coding(bits, "x", "lz4", CHUNK) == ("lz4", "bitshuffle")
    assert shards.choose_coding(np.zeros(0, np.int32), "x", "zstd", CHUNK) == ("zstd", layout.SHUFFLES[0])


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
    assert 0 < saving < shards.CODING_PENALTIES["t", "zstd"]["zstd", "bitshuffle"]
    assert shards.choose_coding(deltas, "x", "zstd", CHUNK) == ("zstd", "bitshuffle")  # by size alone
    assert shards.choose_coding(deltas, "t", "zstd", CHUNK) == ("zstd", "shuffle")
    assert shards.choose_coding(deltas, "t", "lz4", CHUNK) == ("lz4", "bitshuffle")  # LZ4: by size


def test_zstd_polarities_take_lz4hc_only_within_a_64th_of_a_byte_per_event():
    rng = np.random.default_rng(2)
    polarities = (rng.random(3 * CHUNK) < 0.5).astype(np.uint8)  # one random bit per event
    size = {
        coding: sum(
            len(
                shards.encode_chunk(
                    polarities[i : i + CHUNK], CHUNK, shards.chunk_compressor(np.uint8, *coding)
                )
            )
            for i in range(0, len(polarities), CHUNK)
        )
        / len(polarities)
        for coding in (("zstd", "bitshuffle"), ("lz4", "bitshuffle"))
    }
    assert 0 <= size["lz4", "bitshuffle"] - size["zstd", "bitshuffle"] < 1 / 64
    assert shards.choose_coding(polarities, "p", "zstd", CHUNK) == ("lz4", "bitshuffle")
    assert shards.choose_coding(polarities, "y", "zstd", CHUNK)[0] == "zstd"  # coordinates: by size
    # a skewed, compressible stream of bytes: LZ4HC is far larger, zstd stays
    skewed = rng.choice(np.arange(128, dtype=np.uint8), 3 * CHUNK, p=np.arange(128, 0, -1) / 8256)
    assert shards.choose_coding(skewed, "p", "zstd", CHUNK)[0] == "zstd"
