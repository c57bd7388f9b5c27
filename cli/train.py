"""``neurodata train``: train a model-zoo SNN on a prepared dataset's frames, with checkpoints and resume."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from neurodata.errors import NeurodataError

from .output import emit, table


def model_options(pairs: list[str]) -> dict[str, Any]:
    """``--model-option KEY=VALUE`` pairs; values are JSON when they parse (numbers, true/false), else strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise NeurodataError(f"--model-option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def frame_datasets(args: argparse.Namespace):
    """Train and validation datasets of ``[T, 2, H, W]`` frames (validation: the ``val`` or ``test`` split)."""
    import neurodata
    from neurodata.cache import open_cache
    from neurodata.loaders.source import resolve_store
    from neurodata.transforms import Downsample, ToFrame

    store = resolve_store(args.dataset, args.root)
    cache = open_cache(store)
    width, height, polarities = cache.attrs["sensor_size"]
    size = (args.size, args.size) if args.size else (width, height)
    transform = Downsample(sensor_size=(width, height, polarities), target_size=size) if args.size else None
    frames = ToFrame(sensor_size=(*size, polarities), n_time_bins=args.T)
    train = neurodata.load(store, "train", representation=frames, transform=transform)
    val_split = next((s for s in ("val", "test") if s in cache.splits), None)
    val = neurodata.load(store, val_split, representation=frames, transform=transform) if val_split else None
    return store, train, val, val_split, (polarities, size[1], size[0])


def build_model(args: argparse.Namespace, geometry: tuple[int, int, int], n_classes: int):
    try:
        from snn import models
    except ImportError as exc:
        raise NeurodataError(f"the model zoo (snn.models) is not available: {exc}") from None
    channels, height, width = geometry
    options = model_options(args.model_option)
    if args.dataset in models.DATASETS:
        options.setdefault("dataset", args.dataset)
    geometry_options = {"in_channels": channels, "input_size": (height, width), "num_classes": n_classes}
    try:
        return models.build(args.model, **geometry_options, **options)
    except (TypeError, ValueError) as exc:
        raise NeurodataError(f"--model {args.model}: {exc}") from None


def config_from_args(args: argparse.Namespace):
    from snn.train import TrainConfig

    try:
        return TrainConfig(
            epochs=args.epochs,
            lr=args.lr,
            optimizer=args.optimizer,
            weight_decay=args.weight_decay,
            schedule=args.schedule,
            warmup_epochs=args.warmup,
            loss=args.loss,
            amp=args.amp,
            grad_clip=args.grad_clip,
            run_dir=args.out,
            monitor=args.monitor,
            patience=args.patience,
            seed=args.seed,
            device=args.device,
            progress=not args.json,
        )
    except ValueError as exc:
        raise NeurodataError(str(exc)) from None


def render(summary: dict[str, Any]) -> str:
    rows = [
        ("run", summary["run_dir"]),
        ("epochs", f"{summary['epochs_run']} run" + (" (stopped early)" if summary["stopped_early"] else "")),
        ("best epoch", f"{summary['best_epoch']} ({summary['monitor']} = {summary['best_value']:.4f})"),
    ]
    last = summary["last"]
    rows += [(k, f"{v:.4f}") for k, v in last.items() if k.endswith(("loss", "accuracy"))]
    return table(rows)


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from snn.train import fit

    config = config_from_args(args)
    store, train, val, val_split, geometry = frame_datasets(args)
    n_classes = len(train.class_names or []) or int(train.labels.max()) + 1
    torch.manual_seed(args.seed)
    model = build_model(args, geometry, n_classes)
    common = {
        "batch_size": args.batch_size,
        "num_workers": args.workers,
        "persistent_workers": args.workers > 0,
    }
    train_loader = DataLoader(train, shuffle=True, drop_last=False, **common)
    val_loader = DataLoader(val, **common) if val is not None else None

    def report(row: dict[str, Any], _model) -> None:
        if args.json:
            print(json.dumps(row), file=sys.stderr)
        else:
            shown = "  ".join(
                f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("loss", "accuracy", "firing_rate"))
            )
            print(f"epoch {row['epoch']}/{args.epochs}  {shown}  ({row['epoch_seconds']:.1f} s)", flush=True)

    result = fit(model, train_loader, val_loader, config, resume=args.resume, callbacks=[report])
    summary = {
        "store": store,
        "validation_split": val_split,
        "run_dir": args.out,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "best_epoch": result.best_epoch,
        "monitor": config.monitor if val_loader is not None else config.monitor.replace("val_", "train_"),
        "best_value": result.best_value,
        "last": result.history[-1] if result.history else {},
    }
    emit(summary, args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        description="Train on the frames of a prepared dataset (neurodata prepare NAME first). Writes "
        "RUN_DIR/{last.pt,best.pt,best.json,metrics.csv,config.json}; --resume continues exactly.",
    )
    p.add_argument("--dataset", required=True, help="dataset name (cache under --root), cache path or URL")
    p.add_argument("--model", default="dvsgesture-net", help="model-zoo name (default dvsgesture-net)")
    p.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="zoo model option, e.g. channels=64",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints and logs")
    p.add_argument("--root", help="where caches live (default: $NEURODATA_HOME or the user cache folder)")
    p.add_argument("--epochs", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16, help="per process (default 16)")
    p.add_argument(
        "--T", type=int, default=16, help="frames per sample: time bins of equal duration (default 16)"
    )
    p.add_argument("--size", type=int, help="downsample frames to SIZE x SIZE (default: the sensor size)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=("cosine", "step", "none"), default="cosine")
    p.add_argument("--warmup", type=int, default=0, help="warm-up epochs (default 0)")
    p.add_argument("--loss", choices=("ce", "mse"), default="ce")
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 on CPU, fp16 on CUDA)")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    p.add_argument("--monitor", default="val_accuracy", help="metric for the best model and early stopping")
    p.add_argument("--patience", type=int, help="stop after this many epochs without improvement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt when it exists")
    p.add_argument(
        "--json", action="store_true", help="print one JSON summary (epoch rows as JSON on stderr)"
    )
    p.set_defaults(run=run)
