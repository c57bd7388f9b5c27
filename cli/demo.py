"""``neurodata demo``: synthetic gestures -> prepare -> frames -> spiking network trained on CPU, in minutes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from .output import number


def render(result: dict) -> str:
    t = result["timings_s"]
    paths = result["paths"]
    lines = [
        "",
        "The data above is SYNTHETIC (simulated DVS recordings of moving blobs, DVS128 Gesture layout):",
        "the accuracy shows the pipeline works and learns; it says nothing about the real dataset.",
        f"time: {t['total']:.0f} s in all (generate {t['generate']:.0f} s, prepare {t['prepare']:.0f} s, "
        f"frames {t['frames']:.0f} s, train {t['train']:.0f} s, evaluate {t['evaluate']:.1f} s)",
        f"archive: {paths['archive']}",
        f"cache:   {paths['cache']}",
        f"run:     {paths['run']}  (metrics.csv, best.pt from epoch {result['best_epoch']}; "
        f"plot with: neurodata plot {paths['run']})",
        f"test accuracy: {100 * result['test_accuracy']:.1f}%",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from snn.demo import QUICK, DemoConfig, run_demo

    config = QUICK if args.quick else DemoConfig()
    overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="neurodata-demo-"))
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    result = run_demo(root, config, say=lambda line: say(line) or sys.stdout.flush())
    if args.json:
        print(json.dumps(result))
    else:
        print(render(result))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        description="Generate a SYNTHETIC DVS128-Gesture-layout archive, prepare it, train a small "
        "spiking conv net on CPU and report the accuracy on unseen users (a few minutes on 2 cores).",
    )
    p.add_argument(
        "--root", help="new or empty folder for the archive, cache and run (default: a new temp folder)"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds; a smoke test, lower accuracy)")
    p.add_argument("--epochs", type=number(int, minimum=1), help="training epochs (default 8; 4 with --quick)")
    p.add_argument("--seed", type=number(int, minimum=0), help="seed of the data and the training (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON result (progress lines on stderr)")
    p.set_defaults(run=run)
