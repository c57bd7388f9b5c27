"""Capture Tonic 1.7 outputs as test expectations (run in the benchmark env, which has Tonic).

    cd <repo> && PYTHONPATH=. /work/benchenv/bin/python tests/data/capture_tonic.py

Writes tests/data/tonic_expected.npz. Inputs are the N-MNIST fixture (read with neurodata, never
stored here) and small synthetic arrays built below; only Tonic's outputs are stored. Keys:
``<case>`` for dense outputs and ``<case>/events`` ([N, 4] int64 columns t, x, y, p) for event
outputs. ``bug/...`` keys record Tonic's documented bugs so tests can show we differ on purpose.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tonic
import tonic.transforms as T

import neurodata as nd

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "nmnist" / "sample_nmnist.bin"
SENSOR = (34, 34, 2)
TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])


def to_tonic(events: np.ndarray) -> np.ndarray:
    out = np.empty(len(events), dtype=TONIC_DTYPE)
    for name in "txyp":
        out[name] = events[name]
    return out


def columns(events: np.ndarray) -> np.ndarray:
    return np.stack([events[name].astype(np.int64) for name in "txyp"], axis=1)


def main() -> None:
    fixture = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE
    ev = to_tonic(nd.read(fixture))
    out: dict[str, np.ndarray] = {"tonic_version": np.array(tonic.__version__)}

    frames = {
        "frame/time_window": T.ToFrame(SENSOR, time_window=10000),
        "frame/time_window_incomplete": T.ToFrame(SENSOR, time_window=10000, include_incomplete=True),
        "frame/time_window_overlap": T.ToFrame(
            SENSOR, time_window=10000, overlap=2000, include_incomplete=True
        ),
        "frame/event_count": T.ToFrame(SENSOR, event_count=1000),
        "frame/event_count_overlap": T.ToFrame(
            SENSOR, event_count=1000, overlap=100, include_incomplete=True
        ),
        "frame/n_event_bins": T.ToFrame(SENSOR, n_event_bins=5),
        "frame/n_time_bins": T.ToFrame(SENSOR, n_time_bins=3),
        "frame/n_time_bins_overlap": T.ToFrame(SENSOR, n_time_bins=3, overlap=0.1),
        "image": T.ToImage(SENSOR),
        "voxel/5": T.ToVoxelGrid(SENSOR, n_time_bins=5),
        "time_surface": T.ToTimesurface(SENSOR, dt=10000, tau=5000),
        "averaged_time_surface": T.ToAveragedTimesurface(
            SENSOR, surface_size=5, cell_size=10, time_window=20000, tau=5000
        ),
        "averaged_time_surface_lin": T.ToAveragedTimesurface(
            SENSOR, surface_size=3, cell_size=10, time_window=3000, tau=1000, decay="lin"
        ),
    }
    for key, transform in frames.items():
        value = np.asarray(transform(ev.copy()))
        out[key] = value.astype(np.float32) if value.dtype == np.float64 else value  # halves the file
    out["frame/n_event_bins_6"] = T.ToFrame(SENSOR, n_event_bins=6)(ev.copy())  # 4325 % 6 = 5 left over

    event_transforms = {
        "denoise": T.Denoise(filter_time=500),
        "refractory": T.RefractoryPeriod(delta=1000),
        "hot_pixels": T.DropPixel(hot_pixel_frequency=100),
        "drop_pixel": T.DropPixel(coordinates=[(10, 10), (20, 15), (5, 30)]),
        "crop_time": T.CropTime(min=1000, max=200000),
        "merge_polarities": T.MergePolarities(),
        "downsample": T.Downsample(time_factor=0.001, spatial_factor=0.5),
        "downsample_target": T.Downsample(sensor_size=SENSOR, target_size=(17, 10)),
        "center_crop": T.CenterCrop(SENSOR, 20),
        "center_crop_pad": T.CenterCrop(SENSOR, (40, 30)),
        "flip_lr": T.RandomFlipLR(SENSOR, p=1.0),
        "flip_ud": T.RandomFlipUD(SENSOR, p=1.0),
        "flip_polarity": T.RandomFlipPolarity(p=1.0),
        "time_reversal": T.RandomTimeReversal(p=1.0),
    }
    for key, transform in event_transforms.items():
        out[f"{key}/events"] = columns(transform(ev.copy()))

    # Tonic's bugs, reproduced on small synthetic inputs (tests hand-compute the right answers).
    many = np.zeros(40000, dtype=TONIC_DTYPE)
    many["t"] = np.arange(40000)
    out["bug/int16_wrap"] = T.ToFrame((2, 2, 2), n_event_bins=1)(many.copy())
    out["bug/empty_shape"] = np.array(T.ToFrame((5, 3, 2), n_time_bins=4)(np.zeros(0, TONIC_DTYPE)).shape)
    four = np.zeros(4, dtype=TONIC_DTYPE)
    four["t"] = [0, 100, 200, 300]
    four["x"] = [0, 1, 2, 3]
    out["bug/n_time_bins_drop"] = T.ToFrame((4, 1, 2), n_time_bins=3)(four.copy())
    out["bug/time_window_drop"] = T.ToFrame((4, 1, 2), time_window=100, include_incomplete=True)(four.copy())
    bool_dtype = np.dtype([("x", "<i8"), ("y", "<i8"), ("p", "?"), ("t", "<i8")])
    pair = np.zeros(3, dtype=bool_dtype)
    pair["t"] = [0, 50, 100]
    pair["x"] = [0, 1, 1]
    pair["p"] = [False, True, True]
    out["bug/voxel_bool"] = T.ToVoxelGrid((2, 1, 2), n_time_bins=2)(pair.copy())
    hats = T.ToAveragedTimesurface(SENSOR, surface_size=5, cell_size=10, time_window=20000, tau=5000)
    out["bug/hats_uint16"] = hats(nd.read(fixture)).astype(np.float32)  # our dtype: uint16 offsets wrap
    crop = T.CropTime(min=0)
    first = np.zeros(2, TONIC_DTYPE)
    first["t"] = [0, 10]
    second = np.zeros(2, TONIC_DTYPE)
    second["t"] = [5, 50]
    crop(first)
    out["bug/crop_time_reuse/events"] = columns(crop(second))

    target = HERE / "tonic_expected.npz"
    np.savez_compressed(target, **out)
    print(f"wrote {target} ({len(out)} arrays) with tonic {tonic.__version__}")


if __name__ == "__main__":
    main()
