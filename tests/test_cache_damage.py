"""A damaged or vanished shard is a CacheError naming the split and array, on the loaders' direct
(fast) path and through zarr alike, never an OSError or a zarr/Blosc error from deep inside."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from neurodata.cache import CacheError, build_cache, open_cache
from neurodata.cache.fetch import FsspecFetcher, Request
from neurodata.loaders import load, pad_events

sys.path.insert(0, str(Path(__file__).parent))
from cache_samples import builder, make_random_part  # noqa: E402


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory) -> Path:
    url = tmp_path_factory.mktemp("damage") / "toy.zarr"
    build_cache(builder(str(url), {"train": 5}), make_random_part)
    return url


def copy_of(toy_cache: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(toy_cache, copy)
    return copy


def fast_reads(url: Path) -> None:
    """Every sample of the split through the direct reader: one range, and one padded batch."""
    ds = load(str(url))
    source = ds.pipeline.source
    assert source.columns is not None  # the direct path, not the zarr fallback
    source.events(0, source.n_samples)
    pad_events(ds.__getitems__(range(source.n_samples)))


def damage(shard: Path, kind: str) -> None:
    raw = bytearray(shard.read_bytes())
    if kind == "index":
        raw[-10] ^= 0xFF
    elif kind == "truncated":
        raw = raw[: len(raw) // 2]
    elif kind == "chunk":
        raw[20:60] = b"\xff" * 40
    elif kind == "header":
        raw[4:8] = (5).to_bytes(4, "little")  # the first chunk's header claims 5 bytes
    shard.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "kind, fast_message",
    [
        ("index", r"train/t/c/0: shard index is truncated or fails its CRC32C"),
        ("truncated", r"train/t/c/0 holds \d+ bytes, the manifest says \d+"),
        ("chunk", r"split 'train', array 't': chunk 0 \(rows 0-1024\) fails its CRC32C"),
        ("header", r"split 'train', array 't': chunk 0 \(rows 0-1024\) fails its CRC32C"),
    ],
)
def test_a_damaged_shard_is_a_cache_error_on_both_paths(toy_cache, tmp_path, kind, fast_message):
    url = copy_of(toy_cache, tmp_path)
    damage(url / "train" / "t" / "c" / "0", kind)
    with pytest.raises(CacheError, match=fast_message):
        fast_reads(url)
    split = open_cache(str(url))["train"]
    # a shard of another size than the manifest records is refused before zarr reads it
    zarr_message = fast_message if kind == "truncated" else r"split 'train': rows 0-\d+ of 't', 'x', 'y'.* cannot be read"
    with pytest.raises(CacheError, match=zarr_message):
        split.events(0, split.n_samples)


def test_a_shard_gone_after_its_index_was_read_is_a_cache_error(toy_cache, tmp_path):
    url = copy_of(toy_cache, tmp_path)
    ds = load(str(url))  # a local cache's shard indexes are read here, before workers fork
    (url / "train" / "x" / "c" / "0").unlink()
    with pytest.raises(CacheError, match=r"train/x/c/0: the shard file is gone"):
        ds.pipeline.source.events(0, 3)


def test_a_shard_cut_short_after_its_index_was_read_is_a_cache_error(toy_cache, tmp_path):
    url = copy_of(toy_cache, tmp_path)
    ds = load(str(url))
    shard = url / "train" / "y" / "c" / "0"
    shard.write_bytes(shard.read_bytes()[:40])
    short = r"train/y/c/0: asked for bytes 0-\d+, got 40 \(truncated shard file\?\)"
    with pytest.raises(CacheError, match=short):
        ds.pipeline.source.events(0, 3)


def test_an_unreadable_shard_file_is_a_cache_error(toy_cache, tmp_path):
    url = copy_of(toy_cache, tmp_path)
    shard = url / "train" / "t" / "c" / "0"
    shard.unlink()
    shard.mkdir()  # opens, but every read fails (EISDIR); not a file, so missing against the manifest
    with pytest.raises(CacheError, match=r"train/t/c/0 is missing"):
        fast_reads(url)


def test_remote_read_failures_are_cache_errors_and_missing_objects_are_absent():
    class Failing:
        def cat_ranges(self, paths, starts, ends, on_error):
            return [FileNotFoundError(paths[0]), PermissionError("denied")][: len(paths)]

    fetcher = FsspecFetcher(Failing())
    assert fetcher.fetch([Request("bucket/c.zarr/train/t/c/1", 0, 10)]) == [None]  # all fill value
    requests = [Request(f"bucket/c.zarr/train/t/c/{shard}", 0, 10) for shard in (1, 2)]
    with pytest.raises(CacheError, match=r"bucket/c.zarr/train/t/c/2: cannot read the shard file: denied"):
        fetcher.fetch(requests)


@pytest.mark.parametrize("array", ["labels", "offsets", "x"])
def test_a_deleted_file_is_a_cache_error_not_zeros(toy_cache, tmp_path, array):
    """zarr reads an absent chunk or shard file as its fill value: labels all 0, samples without
    events, x all 0, with no error on any read path before (``verify`` alone noticed)."""
    url = copy_of(toy_cache, tmp_path)
    (url / "train" / array / "c" / "0").unlink()
    message = rf"split 'train': train/{array}/c/0 is missing"
    with pytest.raises(CacheError, match=message):
        fast_reads(url)
    with pytest.raises(CacheError, match=message):
        open_cache(str(url))["train"].sample(0)


def test_counts_and_labels_are_checked_against_zarr_json(toy_cache, tmp_path):
    import json

    import zarr

    from tests.cache_samples import reseal

    url = copy_of(toy_cache, tmp_path)
    meta = json.loads((url / "zarr.json").read_text())
    counts = meta["attributes"]["neurodata_cache"]["splits"]["train"]
    stored = counts["n_samples"]
    for n_samples in (stored - 2, stored + 3):  # dropped 2 samples / an IndexError deep inside, before
        counts["n_samples"] = n_samples
        (url / "zarr.json").write_text(json.dumps(meta))
        with pytest.raises(CacheError, match=rf"offsets has {stored + 1} entries and labels {stored} for the {n_samples} samples"):
            fast_reads(url)
    url = copy_of(toy_cache, tmp_path / "labels")
    labels = zarr.open_array(str(url / "train" / "labels"), mode="r+")
    n_classes = len(open_cache(str(url)).attrs["class_names"])
    labels[1] = n_classes
    reseal(str(url))  # a label another writer got wrong, not a damaged file
    with pytest.raises(CacheError, match=rf"label {n_classes} is neither one of the {n_classes} classes nor -1"):
        open_cache(str(url))["train"].sample(0)


def test_info_on_a_damaged_labels_chunk_is_a_cache_error(toy_cache, tmp_path):
    """``neurodata info CACHE`` read the labels through zarr unguarded: a traceback, exit 1."""
    from neurodata.cache.verify import cache_info

    url = copy_of(toy_cache, tmp_path)
    chunk = url / "train" / "labels" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-6])
    with pytest.raises(CacheError, match=r"split 'train': its labels cannot be read \(.*\); run `neurodata verify`"):
        cache_info(str(url))


def test_verify_tells_an_edited_file_that_ends_with_its_own_crc32c(toy_cache, tmp_path):
    """zarr ends chunk and shard files with the CRC32C of what comes before; the CRC32C of such a
    whole file is the same constant for any content, so the manifest's CRC32C passed any edit that
    kept the size and re-sealed the file (a relabelled sample, offsets moved between samples)."""
    import google_crc32c

    from neurodata.cache import verify_cache
    from neurodata.cache.store import crc32c_hex

    url = copy_of(toy_cache, tmp_path)
    chunk = url / "train" / "labels" / "c" / "0"
    body = bytearray(chunk.read_bytes()[:-4])
    body[len(body) // 2] ^= 0x01
    edited = bytes(body) + google_crc32c.value(bytes(body)).to_bytes(4, "little")
    assert crc32c_hex(edited) == crc32c_hex(chunk.read_bytes())  # the residue: the old check saw nothing
    chunk.write_bytes(edited)
    problems = verify_cache(str(url)).problems
    assert any(p.startswith("train/labels/c/0: CRC-32 ") for p in problems), problems
