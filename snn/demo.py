"""The end-to-end demo: synthetic DVS128-Gesture archive -> ``prepare`` -> frames -> SNN training on CPU.

Every stage is the real one a user runs on the real dataset; only the recordings are simulated
(:mod:`neurodata.sim.gestures`: moving blobs seen by a simulated DVS, laid out like
``DvsGesture.tar.gz``). The accuracy therefore says that the pipeline works and learns, nothing
about DVS128 Gesture itself. Seeded: the same settings give the same archive, cache and weights.

Layout of the demo folder::

    SyntheticDvsGesture.tar.gz   the generated archive (DVS128 Gesture layout, AEDAT 3.1 trials)
    cache/dvs128.zarr            the cache ``prepare`` built from it (raw/ holds the extraction)
    run/                         the training run: metrics.csv, last.pt, best.pt, best.json, config.json
    demo.json                    settings, stage timings and results
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import layers
from .neurons import LIF
from .sequential import SpikingSequential
from .train import TrainConfig, evaluate, fit, load_best

ARCHIVE = "SyntheticDvsGesture.tar.gz"  # not DvsGesture.tar.gz: prepare checks that name's published md5


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the synthetic data set, the frame representation, the network and the training.

    Attributes:
        users: Simulated subjects; each records every gesture once per lighting.
        test_users: How many of the ``users`` (the last ones) form the test split.
        lightings: Lighting conditions recorded, keys of :data:`neurodata.sim.gestures.LIGHTING`.
        scene: Key of :data:`neurodata.sim.gestures.SCENES`; ``"blobs"`` draws one bright blob per
            hand, about 5x fewer events than ``"people"`` with the same classes.
        gesture_ms: Duration of each gesture in milliseconds.
        frame_us: Interval between the simulated intensity frames the DVS sees, in microseconds.
        size: Side in pixels of the frames the network sees (the 128x128 events are downsampled).
        time_bins: Frames per sample (equal durations).
        channels: Channels of the first convolution (the later blocks use twice as many).
        epochs: Training epochs.
        batch_size: Training samples per batch.
        lr: AdamW's learning rate.
        seed: Seeds the archive, the network's initial weights and the training.
    """

    users: int = 10
    test_users: int = 2
    lightings: tuple[str, ...] = ("fluorescent", "led", "natural")
    scene: str = "blobs"
    gesture_ms: int = 1000
    frame_us: int = 10_000
    size: int = 32
    time_bins: int = 16
    channels: int = 16
    epochs: int = 8
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0


QUICK = DemoConfig(
    users=4,
    test_users=1,
    lightings=("led",),
    gesture_ms=400,
    size=16,
    time_bins=8,
    epochs=5,
    batch_size=8,
    lr=1e-2,
)


def gesture_net(config: DemoConfig, n_classes: int = 11) -> nn.Module:
    """Three conv-BN-LIF-maxpool blocks (``c, 2c, 2c`` channels) and a linear readout of every time step.

    Input ``[T, B, 2, size, size]``, output per-step ``[T, B, classes]`` (the trainer's
    ``readout="mean"`` averages over time).
    The neurons use the default backend (Numba kernels on CPU, Triton on CUDA).

    Args:
        config: Gives ``channels``, ``size`` (a multiple of 8) and the seed of the initial weights.
        n_classes: Outputs of the readout.
    """
    torch.manual_seed(config.seed)
    c = config.channels

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            layers.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            layers.BatchNorm2d(c_out),
            LIF(tau=2.0, detach_reset=True),
            layers.MaxPool2d(2),
        ]

    side = config.size // 8
    return SpikingSequential(
        *block(2, c),
        *block(c, 2 * c),
        *block(2 * c, 2 * c),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Linear(2 * c * side * side, n_classes),
    )


def make_archive(folder: Path, config: DemoConfig, workers: int = 1) -> Path:
    """Write the synthetic DVS128-Gesture-layout archive into ``folder`` (trials simulated in ``workers`` processes).

    Args:
        folder: Existing directory that receives :data:`ARCHIVE`.
        config: Users, lightings, scene, gesture duration, frame interval and seed of the recordings.
        workers: Processes simulating trials in parallel.

    Returns:
        The archive's path.
    """
    from neurodata.sim.gestures import write_archive

    return write_archive(
        folder / ARCHIVE,
        n_users=config.users,
        n_test_users=config.test_users,
        lightings=config.lightings,
        seed=config.seed,
        gesture_us=config.gesture_ms * 1000,
        frame_us=config.frame_us,
        workers=workers,
        scene=config.scene,
    )


def frame_dataset(store: str, split: str, config: DemoConfig) -> TensorDataset:
    """All samples of ``split`` as ``log1p`` event-count frames ``[N, T, 2, size, size]`` (in memory).

    Events are downsampled from 128x128 to ``size`` x ``size`` and binned into ``time_bins``
    frames of equal duration, through ``neurodata.load`` as a user's own script would.

    Args:
        store: URL or path of the prepared DVS128 Gesture cache.
        split: ``"train"`` or ``"test"``.
        config: Gives ``size`` and ``time_bins``.
    """
    import neurodata
    from neurodata.transforms import Downsample, ToFrame

    dataset = neurodata.load(
        store,
        split=split,
        transform=Downsample(spatial_factor=config.size / 128),
        representation=ToFrame(sensor_size=(config.size, config.size, 2), n_time_bins=config.time_bins),
    )
    frames, labels = zip(*(dataset[i] for i in range(len(dataset))))
    x = torch.log1p(torch.from_numpy(np.stack(frames)).float())
    return TensorDataset(x, torch.as_tensor(labels, dtype=torch.long))


def run_demo(
    root: str | Path, config: DemoConfig = DemoConfig(), say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run all stages in ``root`` (created; must be new or empty) and return settings, timings, results.

    Args:
        root: The demo folder (layout in the module docstring).
        config: Sizes of the data, network and training (:data:`QUICK` for a short run).
        say: Receives one progress line per stage and epoch.

    Returns:
        What ``demo.json`` holds: the config, ``timings_s`` per stage, the best epoch, test
        accuracy, loss, firing rate and synops, sample counts and the paths written.

    Raises:
        NeurodataError: ``root`` exists and is not empty.
    """
    from neurodata.datasets.prepare import prepare
    from neurodata.errors import NeurodataError

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise NeurodataError(f"demo folder {root} is not empty; choose a new or empty --root")
    root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str, message: str, fn: Callable[[], Any]) -> Any:
        say(message)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        return out

    n_trials = config.users * len(config.lightings)
    archive = stage(
        "generate",
        f"[1/4] generating a SYNTHETIC DVS128-Gesture-layout archive ({config.users} users x "
        f"{len(config.lightings)} lightings = {n_trials} trials of 11 gestures; simulated DVS, not real recordings)",
        lambda: make_archive(root, config, workers=min(4, os.cpu_count() or 1)),
    )
    summary = stage(
        "prepare",
        "[2/4] neurodata prepare dvs128 --source <archive>",
        lambda: prepare("dvs128", source=str(archive), root=root / "cache", progress=False),
    )
    store = summary["url"]
    train_set, test_set = stage(
        "frames",
        f"[3/4] frames: {config.time_bins} time bins at {config.size}x{config.size}",
        lambda: (frame_dataset(store, "train", config), frame_dataset(store, "test", config)),
    )
    say(
        f"      {len(train_set)} train samples ({config.users - config.test_users} users), "
        f"{len(test_set)} test samples ({config.test_users} unseen users)"
    )
    model = gesture_net(config)
    train_config = TrainConfig(
        epochs=config.epochs,
        lr=config.lr,
        optimizer="adamw",
        weight_decay=1e-2,
        monitor="train_loss",  # pick the best epoch without looking at the test users
        run_dir=str(root / "run"),
        seed=config.seed,
        time_major=False,  # TensorDataset + default collate: [B, T, ...] batches that declare nothing
    )
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=64)

    def log_epoch(row: dict[str, Any], _model: nn.Module) -> None:
        say(
            f"      epoch {row['epoch']:>2}/{config.epochs}  loss {row['train_loss']:.3f}  "
            f"train acc {row['train_accuracy']:.1%}  test acc {row['val_accuracy']:.1%}  "
            f"firing rate {row['val_firing_rate']:.3f}  ({row['epoch_seconds']:.1f} s)"
        )

    stage(
        "train",
        f"[4/4] training a {sum(p.numel() for p in model.parameters()):,}-parameter conv SNN on CPU "
        f"for {config.epochs} epochs",
        lambda: fit(model, train_loader, test_loader, train_config, callbacks=[log_epoch]),
    )
    best = load_best(model, root / "run")
    t0 = time.perf_counter()
    test = evaluate(model, test_loader, dataclasses.replace(train_config, progress=False))
    timings["evaluate"] = round(time.perf_counter() - t0, 2)
    timings["total"] = round(time.perf_counter() - started, 2)
    result = {
        "synthetic": True,
        "config": dataclasses.asdict(config),
        "timings_s": timings,
        "best_epoch": best["epoch"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_firing_rate": test.get("firing_rate"),
        "test_synops_per_sample": test.get("synops_per_sample"),
        "n_train": len(train_set),
        "n_test": len(test_set),
        "paths": {"archive": str(archive), "cache": store, "run": str(root / "run")},
    }
    (root / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
