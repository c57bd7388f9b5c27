"""``neurodata plot RUN_DIR``: loss, accuracy and firing-rate curves of a training run, drawn to PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurodata.errors import NeurodataError
from neurodata.localfs import atomic_output

from .output import emit

PLOT_EXTRA = "neurodata plot needs matplotlib: pip install 'neurodata[plot]' (or pip install matplotlib)"


def draw(history: list[dict[str, float]], out: Path, title: str) -> Path:
    """Three panels (loss, accuracy, firing rates) against the epoch, written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    columns = list(dict.fromkeys(key for row in history for key in row))
    panels = (
        ("loss", [c for c in columns if c.endswith("_loss")]),
        ("accuracy", [c for c in columns if c.endswith("_accuracy")]),
        ("firing rate", [c for c in columns if "firing_rate" in c or "fr/" in c]),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for ax, (label, keys) in zip(axes, panels):
        for key in keys:
            points = [(e, row[key]) for e, row in zip(epochs, history) if key in row]
            ax.plot(*zip(*points), marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, f"no {label} logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    with atomic_output(out, durable=False) as fileobj:  # a missing folder names ``out``, umask respected
        fig.savefig(fileobj, format="png", dpi=100)
    plt.close(fig)
    return out


def run(args: argparse.Namespace) -> int:
    from snn.train import read_history

    run_dir = Path(args.run_dir)
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise NeurodataError(f"{args.out}: --out must end in .png (the curves are a PNG picture)")
    csv_path = run_dir / "metrics.csv"
    if not csv_path.is_file():
        raise NeurodataError(f"{csv_path}: no such file (is {run_dir} a neurodata train run folder?)")
    history = read_history(run_dir)
    if not history:
        raise NeurodataError(f"{csv_path}: no epochs logged yet")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NeurodataError(PLOT_EXTRA) from None
    out = Path(args.out) if args.out else run_dir / "curves.png"
    draw(history, out, f"{run_dir.name}: {len(history)} epochs")
    emit(
        {"png": str(out), "epochs": len(history)},
        args.json,
        lambda r: f"wrote {r['png']} ({r['epochs']} epochs)",
    )
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("plot",)
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder written by neurodata train or snn.train.fit"
    )
    p.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
