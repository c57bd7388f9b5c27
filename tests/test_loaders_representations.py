"""Representations through the loaders: on the fly, from a spec dict, precomputed in the cache (and
never served stale), batched for the SNN trainer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from neurodata.loaders import load, stack_dense, stack_time_major
from neurodata.loaders.precompute import precompute
from neurodata.loaders.precomputed import ATTRS_KEY, representation_location

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

transforms = pytest.importorskip(
    "neurodata.transforms", reason="neurodata.transforms (branch repr) not merged yet"
)
representations = pytest.importorskip(
    "neurodata.representations", reason="neurodata.representations not merged yet"
)

N = 16
W, H, P = ls.SENSOR


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return ls.build_indexed_cache(str(tmp_path_factory.mktemp("repr") / "indexed.zarr"), N)


def expected_frames(index: int, bins: int) -> np.ndarray:
    return representations.to_frame(ls.sample_events(index), ls.SENSOR, n_time_bins=bins)


def test_frames_on_the_fly_take_the_cache_sensor_size(store):
    for representation in (transforms.ToFrame(None, n_time_bins=4), {"type": "frame", "n_time_bins": 4}):
        ds = load(store, representation=representation)
        assert not ds.precomputed
        for i in (0, 1, 5):
            frames, label = ds[i]
            assert frames.shape == (4, P, H, W) and label == i
            np.testing.assert_array_equal(frames, expected_frames(i, 4))
            assert frames.sum() == len(ls.sample_events(i))
    x, y = stack_dense([ds[i] for i in range(3)])
    assert tuple(x.shape) == (3, 4, P, H, W) and y.tolist() == [0, 1, 2]


def test_plain_callable_and_unknown_spec(store):
    ds = load(store, representation=lambda events: np.bincount(events["p"], minlength=2))
    assert ds[3][0].sum() == len(ls.sample_events(3))
    with pytest.raises(ValueError, match="unknown representation type 'nope'"):
        load(store, representation={"type": "nope"})


def test_precomputed_frames_are_used_only_for_the_same_spec_and_cache(store):
    spec = transforms.ToFrame(None, n_time_bins=3)
    with pytest.raises(FileNotFoundError, match="no precomputed frame-"):
        load(store, representation=spec, precomputed=True)
    written = precompute(store, spec, workers=2, progress=False)
    assert list(written) == ["train"]

    ds = load(store, representation=spec)
    assert ds.precomputed
    for i in range(N):
        np.testing.assert_array_equal(ds[i][0], expected_frames(i, 3))
        assert ds[i][1] == i
    assert not load(store, representation=transforms.ToFrame(None, n_time_bins=4)).precomputed
    assert not load(store, representation=spec, precomputed=False).precomputed
    assert not load(store, representation=spec, transform=lambda events: events).precomputed

    stream = load(store, representation=spec, streaming=True, block_samples=5, seed=2)
    loader = DataLoader(
        stream, batch_size=4, num_workers=2, multiprocessing_context="fork", collate_fn=stack_time_major
    )
    seen = []
    for x, y in loader:
        assert tuple(x.shape[0:1]) + tuple(x.shape[2:]) == (3, P, H, W)
        for column, label in enumerate(y.tolist()):
            np.testing.assert_array_equal(x[:, column].numpy(), expected_frames(label, 3))
            seen.append(label)
    assert sorted(seen) == list(range(N))

    # frames computed from another build of the cache are ignored
    key = representations.representation_key(load(store, representation=spec).pipeline.representation.spec())
    group = representation_location(store, key, "train").open_group("r+")
    marker = dict(group.attrs[ATTRS_KEY])
    group.attrs.update({ATTRS_KEY: {**marker, "cache_fingerprint": "another build"}})
    assert not load(store, representation=spec).precomputed
    precompute(store, spec, progress=False)  # recomputes: the stored copy is not usable
    assert load(store, representation=spec).precomputed


def test_variable_shape_representations_cannot_be_stored(store):
    with pytest.raises(ValueError, match="only fixed-shape representations"):
        precompute(store, transforms.ToFrame(None, time_window=10_000.0), progress=False)


def test_frames_cli_stores_what_the_loader_reads(store, capsys):
    import argparse
    import json

    from neurodata.cli import frames as frames_cli
    from neurodata.errors import NeurodataError

    parser = argparse.ArgumentParser()
    frames_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["frames", store, "--spec", "frame:n_time_bins=2", "--json"])
    assert args.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["spec"] == {"type": "frame", "n_time_bins": 2} and list(result["written"]) == ["train"]
    ds = load(store, representation={"type": "frame", "n_time_bins": 2})
    assert ds.precomputed
    np.testing.assert_array_equal(ds[4][0], expected_frames(4, 2))

    assert frames_cli.parse_spec('{"type": "voxel_grid", "n_time_bins": 3}') == {
        "type": "voxel_grid",
        "n_time_bins": 3,
    }
    with pytest.raises(NeurodataError, match="expected key=value"):
        frames_cli.parse_spec("frame:n_time_bins")
    bad = parser.parse_args(["frames", store, "--spec", "frame:time_window=1000.0"])
    with pytest.raises(NeurodataError, match="only fixed-shape representations") as caught:
        bad.run(bad)
    assert str(caught.value).count(str(store)) == 1  # the cache was named twice


def test_verify_accepts_a_cache_with_precomputed_frames(tmp_path):
    from neurodata.cache import verify_cache

    url = ls.build_indexed_cache(str(tmp_path / "small.zarr"), 8)
    precompute(url, {"type": "frame", "n_time_bins": 2}, progress=False)
    report = verify_cache(url)
    assert report.ok, report.problems
    (Path(url) / "train" / "stray").write_bytes(b"x")  # anything else unexpected is still reported
    assert verify_cache(url).problems == ["train/stray: unexpected file (not in the manifest)"]
