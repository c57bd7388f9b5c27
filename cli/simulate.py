"""``neurodata simulate VIDEO OUT``: a simulated DVS watching a video, an image folder or an .npy stack."""

from __future__ import annotations

import argparse
import dataclasses
import time

from tqdm import tqdm

from neurodata.errors import NeurodataError
from neurodata.sim.dvs import DvsParams
from neurodata.sim.video import simulate_video
from neurodata.writer import output_format

from .output import add_out_format, emit, number, table, width_x_height


def run(args: argparse.Namespace) -> int:
    try:
        params = DvsParams(
            c_on=args.c_on,
            c_off=args.c_off,
            threshold_sigma=args.threshold_sigma,
            refractory_us=args.refractory_us,
            shot_noise_hz=args.shot_noise_hz,
            leak_hz=args.leak_hz,
            seed=args.seed,
        )
    except ValueError as err:  # the sensor's own checks, reported as a command-line error
        raise NeurodataError(str(err)) from None
    written = output_format(args.output, args.out_format).name  # an unwritable choice fails first
    start = time.perf_counter()
    with tqdm(desc="frames", unit="frame", leave=False, disable=True if args.json else None) as bar:
        summary = simulate_video(
            args.input, args.output, params, args.fps, args.size, args.out_format, on_frame=lambda i: bar.update()
        )
    result = {
        **dataclasses.asdict(summary),
        "output_format": written,
        "seconds": round(time.perf_counter() - start, 3),
    }
    emit(result, args.json, render)
    return 0


def render(result: dict) -> str:
    return table(
        [
            ("simulated", result["source"]),
            ("to", f"{result['output']} ({result['output_format']})"),
            ("frames", f"{result['frames']:,} ({result['width']}x{result['height']})"),
            ("duration", f"{result['duration_us'] / 1e6:.3f} s"),
            ("events", f"{result['events']:,} ({result['on_events']:,} ON)"),
            ("seconds", result["seconds"]),
        ]
    )


def add_parser(subparsers) -> None:
    defaults = DvsParams()
    p = subparsers.add_parser(
        "simulate",
    )
    p.add_argument("input", help="video file, folder of images (sorted by name) or .npy [N, H, W(, 3)]")
    p.add_argument(
        "output", help="events out: .npz, .h5 or an event format's extension (.raw, .dat, .aedat4 ...)"
    )
    p.add_argument(
        "--fps",
        type=number(float, above=0, maximum=1e6),
        help="frame rate (required for image folders and .npy; overrides a video's timestamps)",
    )
    p.add_argument("--size", type=width_x_height, help="resample frames to WIDTHxHEIGHT, e.g. 128x128")
    add_out_format(p)
    p.add_argument("--format", dest="out_format", help=argparse.SUPPRESS)  # the earlier spelling
    p.add_argument("--c-on", type=number(float, above=0), default=defaults.c_on, help="ON contrast threshold (log intensity)")
    p.add_argument(
        "--c-off", type=number(float, above=0), default=defaults.c_off, help="OFF contrast threshold (log intensity)"
    )
    p.add_argument(
        "--threshold-sigma",
        type=number(float, minimum=0),
        default=defaults.threshold_sigma,
        help="per-pixel threshold mismatch (std)",
    )
    p.add_argument("--refractory-us", type=number(int, minimum=0), default=defaults.refractory_us, help="refractory period (us)")
    p.add_argument(
        "--shot-noise-hz",
        type=number(float, minimum=0, maximum=1e6),
        default=defaults.shot_noise_hz,
        help="shot-noise events per pixel per second",
    )
    p.add_argument("--leak-hz", type=number(float, minimum=0, maximum=1e6), default=defaults.leak_hz, help="leak events per pixel per second")
    p.add_argument("--seed", type=number(int, minimum=0), default=defaults.seed, help="seed of the mismatch and noise")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
