"""``neurodata convert IN OUT``: any readable format to .npz, .h5 or any writable format, streaming."""

from __future__ import annotations

import argparse
import os
import time

import neurodata as nd

from .output import byte_progress, emit, table


def convert(src: str, dst: str, in_format: str | None, out_format: str | None, quiet: bool) -> dict:
    """Stream ``src`` into ``dst`` chunk by chunk; the output appears only when complete."""
    start = time.perf_counter()
    count = 0
    with (
        nd.open_recording(src, in_format) as rec,
        byte_progress(rec.size, os.path.basename(src), quiet) as bar,
    ):
        with nd.open_writer(dst, rec.info, out_format) as writer:
            for chunk in rec.chunks(n_events=1 << 20):
                writer.write(chunk)
                count += len(chunk)
                bar.update(rec.position - bar.n)
        in_name = rec.info.format
    return {
        "input": src,
        "output": dst,
        "input_format": in_name,
        "output_format": out_format or os.path.splitext(dst)[1].lstrip("."),
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
    emit(
        convert(args.input, args.output, args.in_format, args.out_format, quiet=args.json), args.json, render
    )
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert a recording to .npz, .h5 or another event format")
    p.add_argument("input", help="input recording (path or fsspec URL)")
    p.add_argument("output", help="output path: .npz, .h5, or an event format's extension")
    p.add_argument("--in-format", help="force the input format")
    p.add_argument(
        "--out-format", help="output event format when the extension is ambiguous (e.g. evt2/evt3 for .raw)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
