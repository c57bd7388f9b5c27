"""``neurodata convert IN OUT``: any readable format to .npz, .h5 or any writable format, streaming."""

from __future__ import annotations

import argparse
import os
import time

import neurodata as nd
from neurodata.writer import output_format

from .output import add_out_format, byte_progress, emit, table


def convert(args: argparse.Namespace) -> dict:
    """Stream ``args.input`` into ``args.output`` chunk by chunk; the output appears only when complete."""
    src, dst = args.input, args.output
    start = time.perf_counter()
    count = 0
    written = output_format(dst, args.out_format).name  # an unwritable choice fails before reading
    with (
        nd.open_recording(src, args.in_format) as rec,
        byte_progress(rec.size, os.path.basename(src), args.json) as bar,
    ):
        with nd.open_writer(dst, rec.info, args.out_format, args.shift_time) as writer:
            for chunk in rec.chunks(n_events=1 << 20):
                writer.write(chunk)
                count += len(chunk)
                bar.update(rec.position - bar.n)
        in_name = rec.info.format
    return {
        "input": src,
        "output": dst,
        "input_format": in_name,
        "output_format": written,
        "events": count,
        "seconds": round(time.perf_counter() - start, 3),
    }


def render(result: dict) -> str:
    return table(
        [
            ("converted", f"{result['input']} ({result['input_format']})"),
            ("to", f"{result['output']} ({result['output_format']})"),
            ("events", f"{result['events']:,}"),
            ("seconds", result["seconds"]),
        ]
    )


def run(args: argparse.Namespace) -> int:
    emit(convert(args), args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("convert",)
    p.add_argument("input", help="input recording (path or fsspec URL)")
    p.add_argument("output", help="output path: .npz, .h5, or an event format's extension")
    p.add_argument("--in-format", help="force the input format")
    add_out_format(p)
    p.add_argument(
        "--shift-time",
        action="store_true",
        help="subtract the first event's time so the output starts at t=0 (e.g. Unix-time recordings to "
        "N-MNIST .bin, whose times must stay below 2**32 us)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
