"""Cache layout 4: every chunk carries its CRC32C, checked on every read. Four bytes overwritten in
one chunk's compressed bytes are a CacheError naming the cache, split, array and chunk (and, from a
loader, the sample) on each read path: zarr's, the direct reader's (single samples, padded batches,
streaming, frames computed on the fly), stored frames, and an fsspec store. A layout 3 cache (no
chunk checksums, written by an older neurodata: ``tests/data/cache_layout3``) still reads, warning
once that it is unchecked; ``verify`` works on both."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
import warnings
from pathlib import Path

import fsspec
import google_crc32c
import numpy as np
import pytest

from neurodata.cache import CacheBuilder, CacheError, build_cache, cache_info, open_cache, verify_cache
from neurodata.cache.errors import UncheckedCacheWarning
from neurodata.cache.layout import LAYOUT_VERSION
from neurodata.loaders import load, pad_events, stack_dense
from neurodata.loaders.precompute import precompute

sys.path.insert(0, str(Path(__file__).parent))
import layout3_cache as old  # noqa: E402

CHUNK, SHARD = 1024, 4096  # the fixture's: sample 0 (3000 events) is chunks 0-2, sample 2 chunks 3-4
CHUNK_CRC = r"chunk 1 \(rows 1024-2048\) fails its CRC32C"


def builder(url: str) -> CacheBuilder:
    """The layout 3 fixture's build, as this neurodata writes it."""
    attrs = {"sensor_size": list(old.SENSOR)}
    return CacheBuilder(url, "layout3", attrs, {"train": 1}, chunk_events=CHUNK, shard_events=SHARD)


@pytest.fixture(scope="module")
def checked_cache(tmp_path_factory) -> Path:
    url = tmp_path_factory.mktemp("checked") / "cache.zarr"
    build_cache(builder(str(url)), old.part)
    precompute(str(url), old.frames(), progress=False)
    return url


def copy_of(cache: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(cache, copy)
    return copy


def payload_span(shard: bytes, array_meta: dict, chunk: int) -> tuple[int, int]:
    """Where inner chunk ``chunk`` of a shard keeps its compressed bytes, from the shard index at its
    end (little-endian uint64 offset and length per chunk, then the index's CRC32C); the chunk's own
    CRC32C follows those bytes."""
    sharding = array_meta["codecs"][0]["configuration"]
    per_shard = array_meta["chunk_grid"]["configuration"]["chunk_shape"][0] // sharding["chunk_shape"][0]
    index = np.frombuffer(shard[-(per_shard * 16 + 4) : -4], dtype="<u8").reshape(-1, 2)
    offset, nbytes = (int(v) for v in index[chunk])
    return offset, offset + nbytes - 4


def overwrite_4_bytes(fs, array: str, shard_key: str, chunk: int) -> None:
    """Flip 4 bytes in the middle of chunk ``chunk``'s compressed bytes, in the shard at ``array/shard_key``."""
    meta = json.loads(fs.cat_file(f"{array}/zarr.json"))
    raw = bytearray(fs.cat_file(f"{array}/{shard_key}"))
    lo, hi = payload_span(bytes(raw), meta, chunk)
    assert google_crc32c.value(bytes(raw[lo:hi])) == int.from_bytes(raw[hi : hi + 4], "little")
    at = (lo + hi) // 2
    raw[at : at + 4] = bytes(255 - b for b in raw[at : at + 4])
    fs.pipe_file(f"{array}/{shard_key}", bytes(raw))


def frames_folder(url: Path) -> Path:
    (folder,) = (url / "representations").iterdir()
    return folder / "train" / "data"


def test_every_read_path_refuses_a_damaged_chunk(checked_cache, tmp_path):
    url = copy_of(checked_cache, tmp_path)
    assert open_cache(str(url)).attrs["layout_version"] == LAYOUT_VERSION == 4
    assert cache_info(str(url))["chunk_checksums"]
    overwrite_4_bytes(fsspec.filesystem("file"), str(url / "train" / "t"), "c/0", chunk=1)
    where = rf"{url}: split 'train', array 't': {CHUNK_CRC}"
    samples = old.samples()

    with pytest.raises(CacheError, match=rf"{url}: split 'train': rows 0-3072 of 't', 'x', 'y'.*chunk 1 of 't' fails its CRC32C"):
        open_cache(str(url))["train"].sample(0)  # through zarr
    dataset = load(str(url))
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 0\)"):
        dataset[0]
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 0\)"):
        pad_events(dataset.__getitems__([2, 0]))
    with pytest.raises(CacheError, match=rf"{where}.*\(reading samples 0-"):
        list(load(str(url), streaming=True))
    on_the_fly = load(str(url), representation=old.frames(), precomputed=False)
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 0\)"):
        on_the_fly[0]
    # the chunks around it still read: the check is per chunk
    np.testing.assert_array_equal(dataset[2][0], samples[2][0])
    np.testing.assert_array_equal(open_cache(str(url))["train"].sample(3)[0], samples[3][0])

    report = verify_cache(str(url))
    assert report.problems == [
        p for p in report.problems if p.startswith("train/t/c/0: CRC32C")
    ] and len(report.problems) == 1


def test_stored_frames_refuse_a_damaged_chunk(checked_cache, tmp_path):
    url = copy_of(checked_cache, tmp_path)
    frames = frames_folder(url)
    overwrite_4_bytes(fsspec.filesystem("file"), str(frames), "c/0/0/0/0/0", chunk=2)
    dataset = load(str(url), representation=old.frames())
    assert dataset.precomputed
    where = rf"{frames.parent}: split 'train', frame-\w+ array 'data': chunk 2 \(rows 2-3\) fails its CRC32C"
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 2\)"):
        dataset[2]
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 2\)"):
        stack_dense(dataset.__getitems__([0, 2]))
    expected = old.frames()(old.samples()[3][0])
    np.testing.assert_array_equal(dataset[3][0], expected)


def test_a_damaged_chunk_on_an_fsspec_store(tmp_path):
    url = f"memory://checksums-{uuid.uuid4().hex[:8]}/cache.zarr"
    build_cache(builder(url), old.part)
    fs, path = fsspec.core.url_to_fs(url)
    overwrite_4_bytes(fs, f"{path}/train/x", "c/0", chunk=1)
    where = rf"{url}: split 'train', array 'x': {CHUNK_CRC}"
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 0\)"):
        load(url, streaming=False)[0]
    with pytest.raises(CacheError, match=rf"{where}.*\(reading sample 0\)"):
        pad_events(load(url, streaming=False).__getitems__([0, 2]))
    with pytest.raises(CacheError, match=rf"{where}.*\(reading samples 0-"):
        list(load(url))  # streams: fsspec stores do by default
    with pytest.raises(CacheError, match=r"split 'train': rows 0-3072 .*chunk 1 of 'x' fails its CRC32C"):
        open_cache(url)["train"].sample(0)
    np.testing.assert_array_equal(load(url, streaming=False)[3][0], old.samples()[3][0])


def test_a_layout_3_cache_reads_with_one_warning_and_verifies(tmp_path):
    url = str(copy_of(old.FIXTURE, tmp_path))
    with pytest.warns(UncheckedCacheWarning, match=r"cache layout 3 stores no checksum per chunk") as seen:
        dataset = load(url)
    assert "delete it and run `neurodata prepare NAME` again" in str(seen[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedCacheWarning)  # once per cache and process
        reader = open_cache(url)["train"]
        again = load(url, streaming=True)
    samples = old.samples()
    batch = pad_events(dataset.__getitems__(list(range(len(samples)))))
    for i, (events, label, _) in enumerate(samples):
        np.testing.assert_array_equal(dataset[i][0], events)  # the direct reader
        np.testing.assert_array_equal(reader.sample(i)[0], events)  # zarr
        assert dataset[i][1] == label
        np.testing.assert_array_equal(batch.t[i, : len(events)].numpy(), events["t"])
    assert sorted(len(e) for e, _ in again) == sorted(len(s[0]) for s in samples)

    frames = load(url, representation=old.frames())
    assert frames.precomputed
    with pytest.warns(UncheckedCacheWarning, match=r"stored representation stores no checksum.*overwrite"):
        got = frames[0][0]
    np.testing.assert_array_equal(got, old.frames()(samples[0][0]))

    report = verify_cache(url, deep=True)
    assert report.ok, report.problems
    assert not cache_info(url)["chunk_checksums"]
    assert builder(url).is_complete()  # the same build in layout 3: kept, not rebuilt


def test_a_layout_3_chunk_that_does_not_decompress_is_still_a_cache_error(tmp_path):
    url = copy_of(old.FIXTURE, tmp_path)
    shard = url / "train" / "t" / "c" / "0"
    raw = bytearray(shard.read_bytes())
    raw[4:8] = (5).to_bytes(4, "little")  # the first chunk's Blosc header claims 5 bytes
    shard.write_bytes(bytes(raw))
    with pytest.warns(UncheckedCacheWarning):
        dataset = load(str(url))
    with pytest.raises(CacheError, match=r"split 'train', array 't': chunk 0 does not decompress to \d+ bytes"):
        dataset[0]
    assert any(p.startswith("train/t/c/0: CRC32C") for p in verify_cache(str(url)).problems)
