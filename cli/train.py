"""``neurodata train``: train a model-zoo SNN on a prepared dataset's frames, with checkpoints and resume."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurodata.errors import NeurodataError
from neurodata.localfs import write_atomic

from .output import emit, number, table


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


@dataclass(frozen=True)
class Data:
    """The datasets of a run and, for each, the split its figures come from (said in every output)."""

    store: str
    train: Any
    val: Any | None
    test: Any | None
    splits: dict[str, str]
    geometry: tuple[int, int, int]  # channels, height, width of the frames
    labels: Any  # numpy labels of the whole training split
    class_names: tuple[str, ...] | None
    representation: dict[str, Any]
    downsample_to: tuple[int, int] | None


def frame_datasets(args: argparse.Namespace) -> Data:
    """``[T, 2, H, W]`` frame datasets: train, validation (the cache's ``val`` split, else a seeded
    ``--val-fraction`` of train) and ``test`` (never used for a decision)."""
    import numpy as np
    from torch.utils.data import Subset

    import neurodata
    from neurodata.cache import open_cache
    from neurodata.loaders.source import resolve_store
    from neurodata.transforms import Downsample, ToFrame
    from snn.train.split import holdout

    store = resolve_store(args.dataset, args.root)
    cache = open_cache(store)
    width, height, polarities = cache.attrs["sensor_size"]
    if args.size and args.size > min(width, height):
        raise NeurodataError(f"--size {args.size}: frames are downsampled, to at most the sensor's {min(width, height)}")
    size = (args.size, args.size) if args.size else (width, height)
    transform = Downsample(sensor_size=(width, height, polarities), target_size=size) if args.size else None
    frames = ToFrame(sensor_size=(*size, polarities), n_time_bins=args.T)

    def split(name: str):
        return neurodata.load(store, name, representation=frames, transform=transform)

    train = split("train")
    labels = np.asarray(train.labels)
    names = tuple(train.class_names) if getattr(train, "class_names", None) else None
    test = split("test") if "test" in cache.splits else None
    splits = {"train": "train"}
    if "val" in cache.splits:
        val = split("val")
        splits["val"] = "val"
    elif args.val_fraction != 0:  # holdout() refuses a fraction outside (0, 1)
        try:
            kept, held = holdout(labels, args.val_fraction, args.seed)
        except ValueError as exc:
            raise NeurodataError(f"--val-fraction: {exc}") from None
        train, val = Subset(train, kept.tolist()), Subset(train, held.tolist())
        share = f"{args.val_fraction:.0%} of train, seed {args.seed}"
        splits.update(train=f"train (the other {len(kept)} samples)", val=f"val ({share})")
    else:
        val = None
    if test is not None:
        splits["test"] = "test"
    return Data(
        store,
        train,
        val,
        test,
        splits,
        (polarities, size[1], size[0]),
        labels,
        names,
        frames.spec(),
        size if args.size else None,
    )


def build_model(args: argparse.Namespace, data: Data, n_classes: int):
    """The zoo model and the :class:`snn.models.ModelSpec` that rebuilds it (written as model.json)."""
    try:
        from snn import models
    except ImportError as exc:
        raise NeurodataError(f"the model zoo (snn.models) is not available: {exc}") from None
    channels, height, width = data.geometry
    options = model_options(args.model_option)
    if args.dataset in models.DATASETS:
        options.setdefault("dataset", args.dataset)
    spec = models.ModelSpec(
        model=args.model,
        in_channels=channels,
        input_size=(height, width),
        num_classes=n_classes,
        options=options,
        representation=data.representation,
        input={"downsample_to": list(data.downsample_to) if data.downsample_to else None},
        readout="mean",
        class_names=data.class_names,
    )
    try:
        return spec.build(), spec
    except (TypeError, ValueError) as exc:
        raise NeurodataError(f"--model {args.model}: {exc}") from None


def config_from_args(args: argparse.Namespace, splits: dict[str, str]):
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
            splits=splits,
        )
    except ValueError as exc:
        raise NeurodataError(str(exc)) from None


def _split_of(metric: str, splits: dict[str, str]) -> str:
    return splits.get(metric.split("_", 1)[0], "")


def render(summary: dict[str, Any]) -> str:
    splits = summary["splits"]
    rows = [(f"{name} data", text) for name, text in splits.items()]
    rows += [
        ("run", summary["run_dir"]),
        ("epochs", f"{summary['epochs_run']} run" + (" (stopped early)" if summary["stopped_early"] else "")),
        (
            "best epoch",
            f"{summary['best_epoch']} ({summary['monitor']} = {summary['best_value']:.4f} on "
            f"{_split_of(summary['monitor'], splits)})",
        ),
    ]
    last = summary["last"]
    rows += [
        (f"last {k}", f"{v:.4f}  [{_split_of(k, splits)}]")
        for k, v in last.items()
        if k.endswith(("loss", "accuracy"))
    ]
    test = summary.get("test")
    if test:
        rows += [(f"test {k}", f"{test[k]:.4f}  [test, {test['checkpoint']}]") for k in ("loss", "accuracy")]
    rows += [("warning", w) for w in summary["warnings"]]
    return table(rows)


def epoch_line(row: dict[str, Any], epochs: int, splits: dict[str, str]) -> str:
    """One terminal line per epoch, each figure under the split it comes from."""
    parts = []
    for prefix in ("train", "val"):
        shown = "  ".join(
            f"{k[len(prefix) + 1 :]} {v:.4f}"
            for k, v in row.items()
            if k.startswith(prefix + "_") and k.endswith(("loss", "accuracy", "firing_rate"))
        )
        if shown:
            parts.append(f"{splits[prefix]}: {shown}")
    return f"epoch {row['epoch']}/{epochs}  " + "  |  ".join(parts) + f"  ({row['epoch_seconds']:.1f} s)"


def init_batch(dataset, batch_size: int):
    """The first ``batch_size`` training samples as a ``[T, B, ...]`` float batch (no shuffle drawn)."""
    from neurodata.loaders import stack_time_major

    inputs, _ = stack_time_major([dataset[i] for i in range(min(batch_size, len(dataset)))])
    return inputs.float()


def check_device(name: str) -> None:
    """NeurodataError naming ``--device`` unless torch knows the device and this machine has it
    (checked before the run folder is made).

    Args:
        name: The ``--device`` value: cpu, cuda, cuda:1, ...
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise NeurodataError(f"--device {name}: not a device torch knows (cpu, cuda, cuda:1, ...)") from None
    if device.type != "cpu":
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as err:  # torch without CUDA asserts
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise NeurodataError(f"--device {name}: not usable here ({reason})") from None


RUN_FILES = ("last.pt", "best.pt", "model.json", "config.json", "metrics.csv")


def refuse_earlier_run(out: str) -> None:
    """NeurodataError when ``out`` holds another run's files (training anew would overwrite them in place)."""
    found = [name for name in RUN_FILES if (Path(out) / name).exists()]
    if found:
        raise NeurodataError(
            f"--out {out}: holds a run already ({', '.join(found)}); pass --resume to continue it, or choose a new folder"
        )


def check_resume(out: str, spec) -> None:
    """NeurodataError when the model this command describes differs from the run's ``model.json``
    at ``out`` (the training options are checked by ``fit``, against the checkpoint)."""
    from snn.models import read_model_spec

    if read_model_spec(out).to_dict() != json.loads(json.dumps(spec.to_dict())):  # (as model.json holds it)
        raise NeurodataError(f"--resume {out}: --model, --model-option, --T or --size differ from the run's model.json")


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from neurodata.loaders import stack_time_major
    from snn.models import write_model_spec
    from snn.train import data_init, evaluate, fit, load_best, silence_warning
    from snn.train.fit import ResumeError

    check_device(args.device)
    resuming = args.resume and (Path(args.out) / "last.pt").is_file()
    if not args.resume:
        refuse_earlier_run(args.out)
    data = frame_datasets(args)
    config = config_from_args(args, data.splits)
    n_classes = len(data.class_names or []) or int(data.labels.max()) + 1
    torch.manual_seed(args.seed)
    model, spec = build_model(args, data, n_classes)
    if resuming:
        check_resume(args.out, spec)  # the run's model.json stays as it is
    else:
        if args.init == "data":
            data_init(model, init_batch(data.train, args.batch_size))
        write_model_spec(args.out, spec)
    common = {
        "batch_size": args.batch_size,
        "num_workers": args.workers,
        "persistent_workers": args.workers > 0,
        "collate_fn": stack_time_major,
    }
    train_loader = DataLoader(data.train, shuffle=True, drop_last=False, **common)
    val_loader = DataLoader(data.val, **common) if data.val is not None else None
    warnings: list[str] = []

    def report(row: dict[str, Any], _model) -> None:
        warning = silence_warning(int(row["epoch"]), row)
        if warning is not None:
            warnings.append(warning)
        if args.json:
            extra = {"splits": data.splits, "warnings": [warning] if warning else []}
            print(json.dumps({**row, **extra}), file=sys.stderr)
        else:
            print(epoch_line(row, args.epochs, data.splits), flush=True)
            if warning is not None:
                print(f"warning: {warning}", file=sys.stderr, flush=True)

    log = logging.getLogger("snn.train")
    quiet = logging.NullHandler()  # the warnings are reported by `report`, in this command's format
    log.addHandler(quiet)
    try:
        result = fit(model, train_loader, val_loader, config, resume=args.resume, callbacks=[report])
    except FloatingPointError as exc:  # a non-finite loss, gradient or input: what to change is in the message
        raise NeurodataError(f"{args.out}: {exc}") from None
    except ResumeError as exc:  # raised before fit writes anything
        raise NeurodataError(f"--resume {args.out}: the run was trained otherwise: {'; '.join(exc.conflicts)}") from None
    finally:
        log.removeHandler(quiet)
    monitor = config.monitor if val_loader is not None else config.monitor.replace("val_", "train_")
    summary = {
        "store": data.store,
        "splits": data.splits,
        "validation_split": data.splits.get("val"),
        "run_dir": args.out,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "best_epoch": result.best_epoch,
        "monitor": monitor,
        "best_value": result.best_value,
        "last": result.history[-1] if result.history else {},
        "test": None,
        "warnings": warnings,
    }
    if data.test is not None and result.best_epoch is not None:
        load_best(model, args.out)
        test = evaluate(model, DataLoader(data.test, **common), config, description="test")
        summary["test"] = {
            "split": "test",
            "checkpoint": "best.pt",
            "epoch": result.best_epoch,
            **{k: v for k, v in test.items() if k in ("loss", "accuracy", "firing_rate", "samples")},
        }
        write_atomic(Path(args.out) / "test.json", json.dumps(summary["test"], indent=2) + "\n", durable=False)
    emit(summary, args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        description="Train on the frames of a prepared dataset (neurodata prepare NAME first). Writes "
        "RUN_DIR/{model.json,last.pt,best.pt,best.json,metrics.csv,config.json,test.json}; the best "
        "epoch is chosen on validation data (the cache's val split, else a seeded part of train), "
        "never on test; --resume continues exactly; snn.models.load_run(RUN_DIR) rebuilds the model.",
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
    p.add_argument("--epochs", type=number(int, minimum=1), default=64)
    p.add_argument("--batch-size", type=number(int, minimum=1), default=16, help="per process (default 16)")
    p.add_argument(
        "--T", type=number(int, minimum=1), default=16, help="frames per sample: time bins of equal duration (default 16)"
    )
    p.add_argument("--size", type=number(int, minimum=1), help="downsample frames to SIZE x SIZE (default: the sensor size)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="without a val split in the cache: the share of train held out (stratified, by --seed) to "
        "choose the best epoch; 0 trains on all of train and chooses on training metrics (default 0.1)",
    )
    p.add_argument(
        "--init",
        choices=("data", "default"),
        default="data",
        help="data: scale each Linear layer so its output on a training batch spreads over twice the "
        "threshold and its neurons fire from the first step, and start batch-norm statistics from that "
        "batch (snn.train.data_init; default); default: PyTorch's initialisation",
    )
    p.add_argument("--lr", type=number(float, above=0), default=1e-3)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--weight-decay", type=number(float, minimum=0), default=0.0)
    p.add_argument("--schedule", choices=("cosine", "step", "none"), default="cosine")
    p.add_argument("--warmup", type=number(int, minimum=0), default=0, help="warm-up epochs (default 0)")
    p.add_argument("--loss", choices=("ce", "mse"), default="ce")
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 on CPU, fp16 on CUDA)")
    p.add_argument("--grad-clip", type=number(float, above=0), help="clip the gradient norm to this value")
    p.add_argument("--monitor", default="val_accuracy", help="metric for the best model and early stopping")
    p.add_argument("--patience", type=number(int, minimum=1), help="stop after this many epochs without improvement")
    p.add_argument("--seed", type=number(int, minimum=0), default=0, help="seed of the training and of the validation part")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=number(int, minimum=0), default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt when it exists")
    p.add_argument(
        "--json", action="store_true", help="print one JSON summary (epoch rows as JSON on stderr)"
    )
    p.set_defaults(run=run)
