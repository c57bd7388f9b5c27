"""``neurodata simulate``: videos (decoded by PyAV/FFmpeg), image folders and .npy stacks to DVS events.

The videos are written here with FFmpeg's lossless FFV1 codec, so the decoded frames are exactly the
arrays we encoded and the events must equal ``simulate_frames`` on those arrays at the same times.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

import neurodata as nd
from neurodata.cli.main import main
from neurodata.errors import NeurodataError
from neurodata.sim import DvsParams, simulate_frames
from neurodata.sim.video import read_frames, simulate_video

av = pytest.importorskip(
    "av", reason="PyAV is the optional 'video' extra (in the dev extra, so CI runs these)"
)

PARAMS = DvsParams(c_on=0.15, c_off=0.15, threshold_sigma=0.02, refractory_us=50, seed=3)


def moving_bar(n: int = 12, height: int = 24, width: int = 40) -> np.ndarray:
    """uint8 frames of a bright bar moving right by 2 px a frame over a dim background."""
    frames = np.full((n, height, width), 30, np.uint8)
    for i in range(n):
        frames[i, :, 2 * i + 4 : 2 * i + 10] = 220
    return frames


def write_video(path, frames: np.ndarray, times_us: list[int] | None = None, rate: int = 50) -> None:
    """A lossless FFV1 video; ``times_us`` sets each frame's presentation time (variable frame rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "gray"
        stream.codec_context.time_base = Fraction(1, 1_000_000)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            frame.pts = times_us[i] if times_us else round(i * 1_000_000 / rate)
            frame.time_base = Fraction(1, 1_000_000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def expected(frames: np.ndarray, times_us: list[int]) -> np.ndarray:
    return simulate_frames([f / 255.0 for f in frames], times_us, PARAMS)


def test_video_events_equal_the_simulator_on_the_decoded_frames_at_their_timestamps(tmp_path):
    frames = moving_bar()
    times = [0, 20_000, 45_000, 60_000, 90_000, 100_000, 130_000, 150_000, 170_000, 200_000, 230_000, 240_000]
    write_video(tmp_path / "bar.mkv", frames, times)
    decoded = list(read_frames(tmp_path / "bar.mkv"))
    assert [t for _, t in decoded] == times  # variable frame rate: each frame's own pts
    np.testing.assert_array_equal(decoded[3][0], frames[3] / 255.0)

    summary = simulate_video(tmp_path / "bar.mkv", tmp_path / "bar.npz", PARAMS)
    events = nd.read(tmp_path / "bar.npz")
    want = expected(frames, times)
    np.testing.assert_array_equal(events, want)
    assert (summary.frames, summary.width, summary.height) == (12, 40, 24)
    assert summary.events == len(want) > 500 and summary.duration_us == 240_000
    assert summary.on_events == int(want["p"].sum())
    # physics: ON events at the bar's leading (right) edge, OFF at its trailing edge
    on, off = events[events["p"] == 1], events[events["p"] == 0]
    assert np.median(on["x"]) > np.median(off["x"]) + 4


def test_fps_overrides_video_timestamps_and_event_formats_are_written(tmp_path):
    frames = moving_bar(6)
    write_video(tmp_path / "bar.mkv", frames)
    simulate_video(tmp_path / "bar.mkv", tmp_path / "bar.raw", PARAMS, fps=1000, format="evt3")
    events, info = nd.read(tmp_path / "bar.raw", return_info=True)
    np.testing.assert_array_equal(events, expected(frames, [i * 1000 for i in range(6)]))
    assert (info.format, info.width, info.height) == ("evt3", 40, 24)


def test_npy_stacks_and_image_folders_give_the_same_events(tmp_path):
    frames = moving_bar(8)
    np.save(tmp_path / "frames.npy", frames)
    np.save(tmp_path / "rgb.npy", np.repeat(frames[..., None], 3, axis=3))  # grey RGB: luma = grey level
    for (grey, _), (luma, _) in zip(
        read_frames(tmp_path / "frames.npy", 100), read_frames(tmp_path / "rgb.npy", 100)
    ):
        np.testing.assert_allclose(luma, grey, rtol=1e-12)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(frames):
        with av.open(str(folder / f"frame_{i:03d}.png"), "w") as png:
            stream = png.add_stream("png")
            stream.width, stream.height, stream.pix_fmt = 40, 24, "gray"
            png.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="gray")))
            png.mux(stream.encode())
    (folder / "notes.txt").write_text("not a frame")
    want = expected(frames, [i * 10_000 for i in range(8)])
    simulate_video(tmp_path / "frames.npy", tmp_path / "a.npz", PARAMS, fps=100)
    simulate_video(folder, tmp_path / "b.npz", PARAMS, fps=100)
    for name in ("a.npz", "b.npz"):
        got = nd.read(tmp_path / name)
        np.testing.assert_array_equal(got, want)


def test_size_resamples_arrays_by_block_average_and_videos_with_ffmpeg(tmp_path):
    frames = moving_bar(4, 24, 40)
    np.save(tmp_path / "frames.npy", frames)
    small = [f for f, _ in read_frames(tmp_path / "frames.npy", fps=10, size=(20, 12))]
    np.testing.assert_allclose(small[1], (frames[1] / 255.0).reshape(12, 2, 20, 2).mean(axis=(1, 3)))
    write_video(tmp_path / "bar.mkv", frames)
    assert next(read_frames(tmp_path / "bar.mkv", size=(20, 12)))[0].shape == (12, 20)
    with pytest.raises(NeurodataError, match="whole factors"):
        next(read_frames(tmp_path / "frames.npy", fps=10, size=(30, 12)))


def test_bad_inputs_give_clear_errors_and_leave_no_output(tmp_path):
    np.save(tmp_path / "frames.npy", moving_bar(3))
    with pytest.raises(NeurodataError, match="need --fps"):
        simulate_video(tmp_path / "frames.npy", tmp_path / "out.npz", PARAMS)
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 4096)
    with pytest.raises(NeurodataError, match="clip.mp4: not a readable video"):
        simulate_video(tmp_path / "clip.mp4", tmp_path / "out.npz", PARAMS)
    np.save(tmp_path / "flat.npy", np.zeros((3, 5)))
    with pytest.raises(NeurodataError, match=r"flat.npy: expected frames \[N, H, W\]"):
        simulate_video(tmp_path / "flat.npy", tmp_path / "out.npz", PARAMS, fps=10)
    # a failure after the output was opened (second image of another size) leaves nothing behind
    folder = tmp_path / "images"
    folder.mkdir()
    for i, shape in enumerate([(24, 40), (12, 40)]):
        with av.open(str(folder / f"{i}.png"), "w") as png:
            stream = png.add_stream("png")
            stream.width, stream.height, stream.pix_fmt = shape[1], shape[0], "gray"
            png.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros(shape, np.uint8), format="gray")))
            png.mux(stream.encode())
    with pytest.raises(NeurodataError, match=r"frame 1: the frame at t = 100000 us has shape \(12, 40\); the first"):
        simulate_video(folder, tmp_path / "out.npz", PARAMS, fps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "flat.npy", "frames.npy", "images"]


@pytest.mark.parametrize(
    "frames, frame",
    [
        (np.full((3, 4, 4), -0.5), 0),  # gave 0 events and exit 0, with a warning about log
        (np.where(np.arange(48).reshape(3, 4, 4) == 20, np.nan, 0.5), 1),  # no warning at all
        (np.full((3, 4, 4), -3, np.int8), 0),  # signed integers scale to negative intensities
    ],
    ids=["negative", "nan", "int8"],
)
def test_intensities_that_are_no_light_are_refused(tmp_path, frames, frame):
    np.save(tmp_path / "frames.npy", frames)
    with pytest.raises(NeurodataError, match=rf"frames.npy: frame {frame}: .* negative or non-finite intensity"):
        simulate_video(tmp_path / "frames.npy", tmp_path / "out.npz", PARAMS, fps=10)
    assert not (tmp_path / "out.npz").exists()


def test_cli_simulate_json_and_error_line(tmp_path, capsys):
    write_video(tmp_path / "bar.mkv", moving_bar(5))
    code = main(["simulate", str(tmp_path / "bar.mkv"), str(tmp_path / "bar.h5"), "--c-on", "0.15", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["frames"] == 5 and result["events"] == len(nd.read(tmp_path / "bar.h5")) > 0
    assert main(["simulate", str(tmp_path / "missing.mp4"), str(tmp_path / "x.npz")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"neurodata: error: {tmp_path / 'missing.mp4'}: no such file or folder"
    )
    assert main(["simulate", str(tmp_path / "bar.mkv"), str(tmp_path / "x.npz"), "--c-on", "0"]) == 2
    assert "argument --c-on: expected a finite number > 0, got '0'" in capsys.readouterr().err
    assert (
        main(["simulate", str(tmp_path / "bar.mkv"), str(tmp_path / "x.npz"), "--threshold-sigma", "-1"]) == 2
    )
    assert capsys.readouterr().err.strip().startswith(
        "neurodata: error: argument --threshold-sigma: expected a finite number >= 0, got '-1'"
    )
    assert not (tmp_path / "x.npz").exists()


def test_a_lossy_h264_mp4_with_colour_frames_gives_moving_edge_events(tmp_path):
    with av.open(str(tmp_path / "clip.mp4"), "w") as container:
        stream = container.add_stream("h264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for i in range(15):
            rgb = np.full((96, 128, 3), 30, np.uint8)
            rgb[:, 4 * i + 8 : 4 * i + 24] = (255, 200, 120)  # a warm bar moving right
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    summary = simulate_video(tmp_path / "clip.mp4", tmp_path / "clip.aedat4", PARAMS, size=(64, 48))
    events, info = nd.read(tmp_path / "clip.aedat4", return_info=True)
    assert (summary.frames, info.width, info.height) == (15, 64, 48) and len(events) == summary.events
    assert abs(summary.duration_us - 14 * 1_000_000 / 30) <= 1
    on, off = events[events["p"] == 1], events[events["p"] == 0]
    assert len(on) > 200 and len(off) > 200 and np.median(on["x"]) > np.median(off["x"])
