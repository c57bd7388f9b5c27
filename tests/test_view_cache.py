"""``neurodata view`` on samples of a prepared cache (events and stored frames / voxel grids) and
``neurodata info CACHE --plot``: numbers checked against the events put into the cache and its metadata."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import neurodata as nd
from neurodata.cache import CacheBuilder, PartData, build_cache, cache_info
from neurodata.cli.main import main
from neurodata.loaders.precompute import precompute
from neurodata.representations import to_frame, to_voxel_grid
from neurodata.viz import (
    Geometry,
    cache_overview,
    event_image,
    frame_pictures,
    overview_figure,
    voxel_pictures,
)

SENSOR = (128, 128, 2)
CLASSES = ["left", "right", "up"]
SAMPLE_US = 100_000
SPLITS = {"train": 2, "test": 1}  # parts per split


def real_samples(fixtures) -> dict[str, list[tuple[np.ndarray, int]]]:
    """The DVS128 fixture's real events cut into 100 ms samples: 4 for train, 2 for test."""
    events = nd.read(fixtures / "aedat2" / "synthetic_cifar10dvs_dvs128.aedat")
    which = (events["t"] - events["t"][0]) // SAMPLE_US
    pieces = [events[which == k] for k in range(6)]
    return {"train": [(pieces[k], k % 3) for k in range(4)], "test": [(pieces[4], 2), (pieces[5], 0)]}


@pytest.fixture(scope="module")
def cache(fixtures, tmp_path_factory):
    samples = real_samples(fixtures)
    url = str(tmp_path_factory.mktemp("view-cache") / "tiny.zarr")

    def make_part(split: str, index: int) -> PartData:
        part = samples[split][2 * index : 2 * index + 2]
        return PartData.from_samples((e, label, f"{split}/{index}/{j}") for j, (e, label) in enumerate(part))

    builder = CacheBuilder(url, "tiny", {"sensor_size": list(SENSOR), "class_names": CLASSES}, SPLITS)
    build_cache(builder, make_part)
    return url, samples


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def read_png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_view_a_cache_sample_shows_its_events(cache, tmp_path, capsys):
    url, samples = cache
    events, label = samples["test"][1]
    code, result = run_json(
        capsys, "view", url, "--split", "test", "--index", "-1", "--out", str(tmp_path / "s.png")
    )
    assert code == 0 and result["kind"] == "events" and f"label {label} (left)" in result["source"]
    picture = read_png(tmp_path / "s.png")
    np.testing.assert_array_equal(picture, event_image(events, Geometry(128, 128)))
    on = events["p"] > 0
    flat = events["y"].astype(np.int64) * 128 + events["x"]
    assert int(picture[..., 1].sum()) == 255 * len(np.unique(flat[on]))
    assert int(picture[..., 0].sum()) == 255 * len(np.unique(flat[~on]))
    code, result = run_json(capsys, "view", url, "--out", str(tmp_path / "d.png"))  # default: train[0]
    np.testing.assert_array_equal(
        read_png(tmp_path / "d.png"), event_image(samples["train"][0][0], Geometry(128, 128))
    )


def test_view_stored_frames_and_voxel_grids(cache, tmp_path, capsys):
    from PIL import Image

    url, samples = cache
    precompute(url, {"type": "frame", "n_time_bins": 4}, progress=False)
    events, _ = samples["train"][2]
    code, result = run_json(capsys, "view", url, "--index", "2", "--stored", "--out", str(tmp_path / "f.gif"))
    assert code == 0 and result["kind"] == "frames" and result["pictures"] == 4
    frames = to_frame(events, SENSOR, n_time_bins=4)
    expected = frame_pictures(frames)
    gif = Image.open(tmp_path / "f.gif")
    assert gif.n_frames == 4
    for k in range(4):
        gif.seek(k)
        shown = np.asarray(gif.convert("RGB"))
        np.testing.assert_array_equal(shown, expected[k])
        assert int(shown[..., 1].sum()) == 255 * int(np.count_nonzero(frames[k, 1]))  # ON cells of the bin

    written = precompute(url, {"type": "voxel_grid", "n_time_bins": 3}, progress=False)
    key = written["train"].rstrip("/").split("/")[-2]
    code, result = run_json(capsys, "view", url, "--index", "2", "--stored", "--out", str(tmp_path / "v.png"))
    assert code == 2 and key in result["error"] and "--stored KEY" in result["error"]
    code, result = run_json(
        capsys, "view", url, "--index", "2", "--stored", key, "--out", str(tmp_path / "v.png")
    )
    assert code == 0 and result["kind"] == "voxel_grid" and result["pictures"] == 3
    grid = to_voxel_grid(events, SENSOR, n_time_bins=3)
    from neurodata.viz import montage

    np.testing.assert_array_equal(read_png(tmp_path / "v.png"), montage(voxel_pictures(grid)))


def test_view_cache_errors(cache, tmp_path, capsys):
    url, _ = cache
    for args, words in (
        (["--split", "valid"], "valid"),
        (["--split", "test", "--index", "2"], "out of range"),
        (["--stored", "nope"], "nope"),
    ):
        code, result = run_json(capsys, "view", url, *args, "--out", str(tmp_path / "x.png"))
        assert code == 2 and words in result["error"] and "\n" not in result["error"], (args, result)
    assert not list(tmp_path.iterdir())


def test_overview_numbers_match_the_metadata(cache):
    url, samples = cache
    info = cache_info(url)
    overview = cache_overview(url)
    for split, s in info["splits"].items():
        counts = overview.class_counts[split]
        assert {str(c): int(n) for c, n in enumerate(counts) if n} == s["label_counts"]
        assert overview.events_per_sample[split].sum() == s["n_events"]
        np.testing.assert_array_equal(overview.events_per_sample[split], [len(e) for e, _ in samples[split]])
    assert overview.heat.shape == (128, 128) and overview.heat.sum() == info["n_events"]
    everything = np.concatenate([e for split in samples.values() for e, _ in split])
    expected = np.zeros((128, 128), np.int64)
    np.add.at(expected, (everything["y"], everything["x"]), 1)
    np.testing.assert_array_equal(overview.heat, expected)  # row = y

    figure = overview_figure(overview)
    bars, _, heat = figure.axes[:3]
    heights = [int(p.get_height()) for p in bars.patches]
    assert heights == [int(n) for split in overview.class_counts for n in overview.class_counts[split]]
    assert heat.images[0].get_array().sum() == info["n_events"]
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_info_plot_writes_a_png(cache, tmp_path, capsys, monkeypatch):
    url, _ = cache
    code, result = run_json(capsys, "info", url, "--plot", "--out", str(tmp_path / "overview.png"))
    assert code == 0 and result["plot"] == str(tmp_path / "overview.png")
    picture = read_png(tmp_path / "overview.png")
    assert picture.shape[0] > 300 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 10
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code, result = run_json(capsys, "info", url, "--plot")
    assert code == 2 and "--out" in result["error"]
    code, result = run_json(capsys, "info", url, "--out", str(tmp_path / "o.png"))
    assert code == 2 and "--plot" in result["error"]
