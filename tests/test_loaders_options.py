"""load()'s streaming options: one frozen StreamingOptions or its fields as keywords, the same
dataset either way; a map-style load refuses them (before, it ignored them), naming them; every
call the README and docs show still works."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from neurodata.loaders import CacheDataset, StreamingDataset, StreamingOptions, load
from neurodata.transforms import ToFrame

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

N = 20
STREAMING = [field.name for field in dataclasses.fields(StreamingOptions)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return ls.build_indexed_cache(str(tmp_path_factory.mktemp("options") / "indexed.zarr"), N)


def test_the_options_are_the_seven_streaming_arguments_and_frozen():
    assert STREAMING == ["shuffle", "seed", "block_samples", "shuffle_buffer", "prefetch", "rank", "world_size"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        StreamingOptions().seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", STREAMING)
@pytest.mark.parametrize("streaming", [None, False], ids=["local default", "streaming=False"])
def test_a_map_style_load_refuses_each_streaming_option_by_name(store, name, streaming):
    value = {"shuffle": False, "rank": 0, "world_size": 1}.get(name, 3)
    with pytest.raises(ValueError, match=rf"load\(\): {name} apply only to a streaming dataset"):
        load(store, streaming=streaming, **{name: value})


def test_the_message_names_every_refused_option_and_comes_before_any_read(tmp_path):
    missing = str(tmp_path / "nowhere.zarr")  # never opened: the arguments are checked first
    with pytest.raises(ValueError, match=r"block_samples, seed, shuffle apply only.*streaming=True"):
        load(missing, seed=1, shuffle=False, block_samples=2)


def test_unknown_keywords_are_a_type_error_naming_them(store):
    with pytest.raises(TypeError, match="load\\(\\) got unexpected keyword arguments: sufle"):
        load(store, streaming=True, sufle=False)


def test_an_options_object_gives_the_same_stream_as_the_keywords(store):
    flat = load(store, streaming=True, seed=3, block_samples=4, shuffle_buffer=6)
    grouped = load(store, streaming=StreamingOptions(seed=3, block_samples=4, shuffle_buffer=6))
    assert isinstance(grouped, StreamingDataset)
    assert [label for _, label in flat] == [label for _, label in grouped]
    assert sorted(label for _, label in grouped) == list(range(N))
    with pytest.raises(ValueError, match="pass seed in the StreamingOptions or as keywords, not both"):
        load(store, streaming=StreamingOptions(seed=3), seed=4)


def test_streaming_dataset_takes_options_or_its_keywords(store):
    pipeline = load(store).pipeline
    by_keywords = StreamingDataset(pipeline, seed=5, block_samples=3, shuffle_buffer=1)
    by_options = StreamingDataset(pipeline, StreamingOptions(seed=5, block_samples=3, shuffle_buffer=1))
    assert (by_keywords.seed, by_keywords.block_samples, by_keywords.shuffle_buffer) == (5, 3, 1)
    assert [label for _, label in by_keywords] == [label for _, label in by_options]
    assert (by_options.rank, by_options.world_size, by_options.prefetch) == (0, 1, 0)  # the defaults


def test_the_documented_calls_still_work(store, tmp_path, monkeypatch):
    """README.md and docs/sections/loaders.md, with a local store for the remote one."""
    monkeypatch.setenv("NEURODATA_HOME", str(Path(store).parent))
    name = Path(store).name.removesuffix(".zarr")
    assert isinstance(load(name, split="train"), CacheDataset)
    assert load(name, representation=ToFrame(None, n_time_bins=16))[1][0].shape[0] == 16
    stream = load(store, storage_options={}, seed=0, streaming=True)
    stream.set_epoch(1)
    assert sorted(label for _, label in stream) == list(range(N))
    for streaming in (True, False):  # storage_options and precomputed apply to both kinds
        assert len(load(store, streaming=streaming, storage_options={}, precomputed="auto")) == N


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("block_samples", 0, "block_samples must be positive, got 0"),  # was the automatic size
        ("shuffle_buffer", -5, "shuffle_buffer must be >= 0, got -5"),  # was block order only
        ("seed", 1.7, "seed must be a whole number, got 1.7"),  # was truncated to 1
        ("prefetch", -1, "prefetch must be >= 0, got -1"),
    ],
)
def test_streaming_numbers_are_checked_naming_the_field(store, name, value, message):
    with pytest.raises(ValueError, match=message):
        StreamingOptions(**{name: value})
    with pytest.raises(ValueError, match=message):
        load(store, streaming=True, **{name: value})
