"""``neurodata convert IN OUT``: any readable format to .npz, .h5 or any writable format, streaming."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Iterator

import numpy as np

import neurodata as nd
from neurodata.diskspace import DiskFullError, require_space
from neurodata.events import RecordingInfo
from neurodata.reader import DEFAULT_BLOCK_BYTES, Recording, rechunk_by_count
from neurodata.writer import estimated_bytes, output_format

from .output import add_out_format, byte_progress, emit, table, width_x_height

CHUNK_EVENTS = 1 << 20  # events written per step
BLOCK_BYTES = DEFAULT_BLOCK_BYTES  # input bytes decoded per step (the free space is checked after the first)


class SpaceCheck:
    """The recording's decoded blocks for ``args.output``: once the first is decoded, the output's
    size is estimated from it (``needed``) and, when that is not free, fails before writing any."""

    def __init__(self, args: argparse.Namespace, rec: Recording, info: RecordingInfo):
        self.args, self.rec, self.info = args, rec, info
        self.needed: int | None = None

    def blocks(self) -> Iterator[np.ndarray]:
        args, rec, start = self.args, self.rec, self.rec.header.data_offset
        for k, block in enumerate(rec.blocks(BLOCK_BYTES)):
            size = rec.size
            if k == 0 and size and rec.position > start:
                n_events = len(block) * (size - start) / (rec.position - start)
                self.needed = estimated_bytes(
                    args.output, block, n_events, self.info, args.out_format, args.shift_time
                )
                require_space(args.output, self.needed)
            yield block


def convert(args: argparse.Namespace) -> dict:
    """Stream ``args.input`` into ``args.output`` chunk by chunk; the output appears only when complete.
    A full disk (foreseen after the first block, or met) is one error naming the output."""
    src, dst = args.input, args.output
    start = time.perf_counter()
    count = 0
    written = output_format(dst, args.out_format).name  # an unwritable choice fails before reading
    with (
        nd.open_recording(src, args.in_format) as rec,
        byte_progress(rec.size, os.path.basename(src), args.json) as bar,
    ):
        info = rec.info
        if args.sensor_size is not None:
            info = dataclasses.replace(info, width=args.sensor_size[0], height=args.sensor_size[1])
        space = SpaceCheck(args, rec, info)
        try:
            with nd.open_writer(dst, info, args.out_format, args.shift_time) as writer:
                for chunk in rechunk_by_count(space.blocks(), CHUNK_EVENTS):
                    writer.write(chunk)
                    count += len(chunk)
                    bar.update(rec.position - bar.n)
        except DiskFullError as err:
            raise DiskFullError(dst, err.needed or space.needed, err.free) from err
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
    p.add_argument(
        "--sensor-size",
        type=width_x_height,
        metavar="WxH",
        help="the sensor's width and height for the output's header, e.g. 1280x720 (for a recording that "
        "does not say it, written to a format that stores it, such as Event Stream)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
