"""``neurodata.viz`` rendering and ``neurodata view`` on recording files: pixel statistics checked against
the events of the vendored real recordings, not only that a file exists."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import neurodata as nd
from neurodata.cli.main import main
from neurodata.errors import NeurodataError
from neurodata.events import make_events
from neurodata.representations import to_frame, to_voxel_grid
from neurodata.viz import (
    DEFAULT_PALETTE,
    Geometry,
    event_frames,
    event_image,
    frame_pictures,
    montage,
    voxel_pictures,
    window_count,
    write_png,
)

ON = np.array(DEFAULT_PALETTE.on)
OFF = np.array(DEFAULT_PALETTE.off)
BOTH = np.array(DEFAULT_PALETTE.both)


def distinct_pixels(events: np.ndarray, width: int) -> dict[str, set[int]]:
    """The pixels (as ``y * width + x``) with ON and with OFF events."""
    flat = events["y"].astype(np.int64) * width + events["x"]
    on = events["p"] > 0
    return {"on": set(flat[on].tolist()), "off": set(flat[~on].tolist())}


def assert_pixels_match(picture: np.ndarray, events: np.ndarray) -> None:
    """Every rule of the event picture, counted against the events."""
    height, width, _ = picture.shape
    seen = distinct_pixels(events, width)
    flat = picture.reshape(-1, 3)
    is_on = (flat == ON).all(1) | (flat == BOTH).all(1)
    is_off = (flat == OFF).all(1) | (flat == BOTH).all(1)
    assert set(np.flatnonzero(is_on).tolist()) == seen["on"]
    assert set(np.flatnonzero(is_off).tolist()) == seen["off"]
    assert int((flat == BOTH).all(1).sum()) == len(seen["on"] & seen["off"])
    # the default palette puts OFF in red alone and ON in green and blue: channel sums count pixels
    assert int(picture[..., 0].sum()) == 255 * len(seen["off"])
    assert int(picture[..., 1].sum()) == int(picture[..., 2].sum()) == 255 * len(seen["on"])
    assert (flat[~(is_on | is_off)] == 0).all()


@pytest.fixture(scope="module")
def evt3(fixtures):
    events, info = nd.read(fixtures / "evt3" / "evt3_sample.raw", return_info=True)
    return events, Geometry(info.width, info.height)


def test_windows_of_a_real_recording_count_its_pixels(evt3):
    events, geometry = evt3
    window = 1000
    pictures = event_frames(events, geometry, window)
    duration = int(events["t"][-1] - events["t"][0])
    assert len(pictures) == math.ceil(duration / window) and pictures.dtype == np.uint8
    assert pictures.shape[1:] == (720, 1280, 3)
    which = np.minimum((events["t"] - events["t"][0]) // window, len(pictures) - 1)
    for k in range(len(pictures)):
        assert_pixels_match(pictures[k], events[which == k])


def test_whole_recording_picture_and_y_orientation(evt3):
    events, geometry = evt3
    picture = event_image(events, geometry)
    assert_pixels_match(picture, events)
    # row r is y = r (y = 0 on top): lit pixels per row equal the distinct x per y of the events
    lit = (picture != 0).any(2).sum(1)
    expected = np.zeros(geometry.height, np.int64)
    ys, counts = np.unique(
        np.unique(events["y"].astype(np.int64) * geometry.width + events["x"]) // geometry.width,
        return_counts=True,
    )
    expected[ys] = counts
    np.testing.assert_array_equal(lit, expected)


def test_y_is_the_row_and_the_last_event_closes_the_last_window():
    events = make_events(
        np.array([0, 10, 50, 100]), np.array([3, 1, 2, 0]), np.array([1, 0, 3, 2]), np.array([1, 0, 1, 0])
    )
    pictures = event_frames(events, Geometry(8, 4), 50)
    assert len(pictures) == 2 == window_count(100, 50)
    np.testing.assert_array_equal(pictures[0, 1, 3], ON)  # (x=3, y=1) ON -> row 1, column 3
    np.testing.assert_array_equal(pictures[0, 0, 1], OFF)
    np.testing.assert_array_equal(pictures[1, 3, 2], ON)  # t = 50 opens the second window
    np.testing.assert_array_equal(pictures[1, 2, 0], OFF)  # t = 100 = t_last belongs to the last one
    assert (pictures != 0).any(3).sum() == 4
    assert window_count(0, 50) == 1 and len(event_frames(events[:0], Geometry(8, 4), 50)) == 1


def test_event_windows_equal_time_window_frames(fixtures):
    events, info = nd.read(fixtures / "aedat2" / "synthetic_cifar10dvs_dvs128.aedat", return_info=True)
    frames = to_frame(events, (128, 128, 2), time_window=30_000, include_incomplete=True)
    np.testing.assert_array_equal(event_frames(events, Geometry(128, 128), 30_000), frame_pictures(frames))
    merged = frame_pictures(frames.sum(1, keepdims=True))
    assert ((merged == BOTH).all(3) == (frames.sum(1) > 0)).all()


def test_voxel_pictures_follow_the_sign(fixtures):
    events = nd.read(fixtures / "nmnist" / "sample_nmnist.bin")
    grid = to_voxel_grid(events, (34, 34, 2), n_time_bins=5)
    pictures = voxel_pictures(grid)
    assert pictures.shape == (5, 34, 34, 3)
    np.testing.assert_array_equal(pictures[..., 1] > 0, grid[:, 0] > 0)
    np.testing.assert_array_equal(pictures[..., 0] > 0, grid[:, 0] < 0)
    peak = np.unravel_index(np.argmax(np.abs(grid[:, 0])), grid[:, 0].shape)
    assert pictures[peak].max() == 255


def test_montage_places_tiles_row_by_row():
    pictures = np.stack([np.full((2, 3, 3), k, np.uint8) for k in range(1, 6)])
    sheet = montage(pictures, gap=1, fill=64)
    assert sheet.shape == (2 * 2 + 1, 3 * 3 + 2, 3)  # 5 tiles: 3 columns, 2 rows
    for k in range(5):
        r, c = (k // 3) * 3, (k % 3) * 4
        assert (sheet[r : r + 2, c : c + 3] == k + 1).all()
    assert (sheet[2] == 64).all() and (sheet[3:, 8:] == 64).all()  # the gap row, the empty sixth tile


def test_missing_pillow_names_the_plot_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(NeurodataError, match=r"neurodata\[plot\]"):
        write_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    assert not list(tmp_path.iterdir())


def view(capsys, *args: str) -> tuple[int, dict]:
    code = main(["view", *args, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_view_png_gif_and_mp4_of_a_recording(fixtures, tmp_path, capsys):
    from PIL import Image

    source = fixtures / "aedat2" / "synthetic_cifar10dvs_dvs128.aedat"
    events = nd.read(source)
    code, result = view(capsys, str(source), "--out", str(tmp_path / "all.png"))
    assert code == 0 and result["pictures"] == 1
    assert_pixels_match(np.asarray(Image.open(tmp_path / "all.png").convert("RGB")), events)

    window = 50_000
    expected = event_frames(events, Geometry(128, 128), window)
    code, result = view(
        capsys, str(source), "--out", str(tmp_path / "clip.gif"), "--window-us", str(window), "--speed", "0.5"
    )
    assert code == 0 and result["pictures"] == len(expected) == math.ceil(589318 / window)
    gif = Image.open(tmp_path / "clip.gif")
    assert gif.n_frames == len(expected)  # no two windows of this recording look the same
    for k in range(gif.n_frames):
        gif.seek(k)
        assert gif.info["duration"] == 100  # 50 ms windows at half speed
        np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), expected[k])  # few colours: lossless

    import av

    code, result = view(capsys, str(source), "--out", str(tmp_path / "clip.mp4"), "--window-us", str(window))
    assert code == 0
    with av.open(str(tmp_path / "clip.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(expected) and decoded[0].shape == (128, 128, 3)
    # lossy, but lit pixels stay brighter than dark ones
    lit = (expected != 0).any(3)
    brightness = np.stack(decoded).astype(float).mean(3)
    assert brightness[lit].mean() > 4 * brightness[~lit].mean()


def test_view_png_grid_of_windows(fixtures, tmp_path, capsys):
    from PIL import Image

    source = fixtures / "nmnist" / "sample_nmnist.bin"
    events = nd.read(source)
    code, result = view(capsys, str(source), "--out", str(tmp_path / "grid.png"), "--window-us", "100000")
    n = math.ceil(int(events["t"][-1] - events["t"][0]) / 100_000)
    assert code == 0 and result["pictures"] == n
    expected = montage(event_frames(events, Geometry(34, 34), 100_000))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")), expected)


def test_errors_are_one_line(fixtures, tmp_path, monkeypatch, capsys):
    source = str(fixtures / "nmnist" / "sample_nmnist.bin")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    for args, words in (
        ([source], "--out"),
        ([source, "--out", str(tmp_path / "x.jpg")], ".png"),
        ([source, "--out", str(tmp_path / "x.png"), "--speed", "0"], "--speed"),
        ([source, "--out", str(tmp_path / "x.png"), "--split", "train"], "caches"),
        ([str(tmp_path / "missing.raw"), "--out", str(tmp_path / "x.png")], "missing.raw"),
        ([source, "--out", str(tmp_path / "no" / "x.png")], "does not exist"),
    ):
        code, result = view(capsys, *args)
        assert code == 2 and words in result["error"] and "\n" not in result["error"], (args, result)
    assert not list(tmp_path.iterdir())


def test_view_exit_code_in_a_subprocess(fixtures):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "neurodata.cli", "view", str(fixtures / "nmnist" / "sample_nmnist.bin")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "give --out" in result.stderr


def test_view_spec_renders_a_representation_of_the_recording(fixtures, tmp_path, capsys):
    from PIL import Image

    source = str(fixtures / "nmnist" / "sample_nmnist.bin")
    events = nd.read(source)
    code, result = view(
        capsys, source, "--spec", "voxel_grid:n_time_bins=5", "--out", str(tmp_path / "v.png")
    )
    assert code == 0 and result["kind"] == "voxel_grid" and result["pictures"] == 5
    expected = montage(voxel_pictures(to_voxel_grid(events, (34, 34, 2), n_time_bins=5)))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "v.png").convert("RGB")), expected)
    code, result = view(capsys, source, "--spec", "frame:n_time_bins=3", "--out", str(tmp_path / "f.png"))
    frames = to_frame(events, (34, 34, 2), n_time_bins=3)
    assert code == 0 and result["pictures"] == 3
    shown = np.asarray(Image.open(tmp_path / "f.png").convert("RGB"))
    np.testing.assert_array_equal(shown, montage(frame_pictures(frames)))
    assert int(shown[..., 0].sum()) == 255 * int(np.count_nonzero(frames[:, 0])) + 64 * int(
        (shown == 64).all(2).sum()
    )
    code, result = view(capsys, source, "--spec", "time_surface:tau=5000", "--out", str(tmp_path / "t.png"))
    assert code == 2 and "time_surface" in result["error"]


def test_view_a_time_span_of_a_recording(fixtures, tmp_path, capsys):
    from PIL import Image

    source = fixtures / "evt2" / "evt2_sample.raw"
    events = nd.read(source)
    t0 = int(events["t"][0])
    part = events[(events["t"] >= t0 + 20_000) & (events["t"] < t0 + 30_000)]
    assert 0 < len(part) < len(events)
    out = tmp_path / "part.png"
    code, result = view(capsys, str(source), "--start-us", "20000", "--duration-us", "10000", "--out", str(out))
    assert code == 0 and f"{len(part):,} events" in result["source"]
    assert_pixels_match(np.asarray(Image.open(out).convert("RGB")), part)
    code, result = view(capsys, str(source), "--duration-us", "0", "--out", str(out))
    assert code == 2 and "--duration-us" in result["error"]


@pytest.mark.parametrize(
    "suffix, message",
    [(".gif", "a GIF shows a picture for at most 655.35 s, not 10000 s"), (".mp4", "an MP4 frame lasts at most 1001 s")],
)
def test_a_picture_longer_than_the_file_can_time_is_refused(tmp_path, suffix, message):
    """A GIF's delay is 16 bits of 10 ms: a longer one raised OverflowError from inside Pillow (exit 1);
    an MP4 rate rounded to 0 played at PyAV's default 24 frames per second while --json said 10000 s."""
    from neurodata.viz.writers import write_gif, write_mp4

    write = write_gif if suffix == ".gif" else write_mp4
    pictures = [np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 255, np.uint8)]
    with pytest.raises(NeurodataError, match=message):
        write(tmp_path / ("clip" + suffix), pictures, 1e7)
    assert list(tmp_path.iterdir()) == []
    write(tmp_path / ("clip" + suffix), pictures, 600_000)  # within both limits
    assert (tmp_path / ("clip" + suffix)).stat().st_size > 0
    if suffix == ".gif":  # Pillow sums identical pictures in a row into one delay
        with pytest.raises(NeurodataError, match="identical pictures in a row last more than 655.35 s"):
            write(tmp_path / "same.gif", [pictures[0]] * 2, 600_000)
        assert not (tmp_path / "same.gif").exists()


def test_a_start_past_the_last_event_is_refused(fixtures):
    """``--start-us`` past the end drew a black picture, said "0 events" and exited 0."""
    from neurodata.viz.clips import TimeSpan, span_events

    path = str(fixtures / "evt3" / "evt3_sample.raw")
    with pytest.raises(NeurodataError, match="--start-us 9000 is past the recording's last event, 8801 us after"):
        span_events(path, None, TimeSpan(9000))
    assert len(span_events(path, None, TimeSpan(8801))[0]) > 0  # the last event itself is kept
