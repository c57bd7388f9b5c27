"""``neurodata replay FILE TARGET``: serve a recording as a camera would, over the DV network
protocol (tcp://, unix://) or faery's UDP formats (udp://)."""

from __future__ import annotations

import argparse
import json
import math

from neurodata.errors import NeurodataError


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not (math.isfinite(speed) and speed > 0):
        raise NeurodataError(f"--speed {text}: expected a positive number or 'max'")
    return speed


def run(args: argparse.Namespace) -> int:
    from neurodata import live

    options = live.ReplayOptions(
        speed=parse_speed(args.speed), loop=args.loop, format=args.format, compression=args.compression
    )
    replay = live.Replay(args.file, args.target, options)
    if args.json:
        print(json.dumps({"serving": args.file, "target": str(replay.endpoint)}), flush=True)
    else:
        print(f"serving {args.file} on {replay.endpoint}", flush=True)
    try:
        replay.serve()
    finally:
        replay.stop()
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("replay",)
    p.add_argument("file", help="any recording neurodata reads")
    p.add_argument(
        "target",
        help="tcp://HOST:PORT (port 0: any free one), unix:///PATH or udp://HOST:PORT?format=t64_x16_y16_on8|t32_x16_y15_on1",
    )
    p.add_argument("--speed", default="1", help="pace multiplier, or 'max' for as fast as possible")
    p.add_argument("--loop", action="store_true", help="start again at the end, forever")
    p.add_argument("--format", help="the recording's format, where the bytes and extension do not say")
    p.add_argument("--compression", default="lz4", help="DV stream compression: none, lz4, lz4_high, zstd, zstd_high")
    p.add_argument("--json", action="store_true", help="print the serving line as JSON")
    p.set_defaults(run=run)
