"""``neurodata live SOURCE``: record a live event stream (DV TCP, UDP, RAW pipes, a paced recording)
to any writable format, and optionally classify it as it arrives with a trained run's model."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time

import neurodata as nd
from neurodata.errors import NeurodataError
from neurodata.writer import output_format

from .output import add_out_format, emit, number, table


def open_source(args: argparse.Namespace):
    from neurodata import live

    return live.open(
        args.source,
        format=args.format,
        follow=args.follow,
        realtime=args.realtime,
        speed=args.speed,
        reconnect=not args.no_reconnect,
        width=args.width,
        height=args.height,
    )


class Session:
    """What one ``live`` run did: events taken, whether it was interrupted, predictions made."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.events = 0
        self.predictions = 0
        self.interrupted = False
        self.failure: NeurodataError | None = None  # the source's error, after the events it gave

    def take(self, blocks, writer, predict) -> None:
        """Write (and classify) blocks until the source ends, the source or the writer fails (kept
        in :attr:`failure`; the writer checks a block before writing any of it), ``--events`` is
        reached or Ctrl-C."""
        limit = self.args.events
        blocks = iter(blocks)
        try:
            while True:
                try:
                    block = next(blocks)
                except StopIteration:
                    return
                except NeurodataError as error:  # a lost connection, a broken stream: keep what came
                    self.failure = error
                    return
                if limit is not None:
                    block = block[: limit - self.events]
                if writer is not None:
                    try:
                        writer.write(block)
                    except NeurodataError as error:  # e.g. times that went back: keep what was written
                        self.failure = error
                        return
                if predict is not None:
                    self.predictions += predict(block)
                self.events += len(block)
                if limit is not None and self.events >= limit:
                    return
        except KeyboardInterrupt:
            self.interrupted = True


def record(args: argparse.Namespace) -> tuple[dict, int]:
    if args.out is not None:
        output_format(args.out, args.out_format)  # an unwritable choice fails before connecting
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise NeurodataError(f"{args.out}: the folder {folder} does not exist")
    session = Session(args)
    loaded = load_run_model(args.run_dir, args.window_us) if args.run_dir else None  # before connecting: fail fast
    start = time.monotonic()
    with open_source(args) as src, contextlib.ExitStack() as stack:
        size = f"{src.info.width}x{src.info.height}" if src.info.width else "size unknown"
        print(f"neurodata live: receiving {src.source} ({src.info.format}, {size})", file=sys.stderr, flush=True)
        timer = threading.Timer(args.duration, src.stop) if args.duration is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        predict = predictor(args, loaded, src.info, stack) if loaded is not None else None
        info = nd.RecordingInfo(src.info.format, src.info.width, src.info.height, time_origin=src.info.time_origin)
        if args.out is None:
            session.take(src.blocks(), None, predict)
        else:
            with nd.open_writer(args.out, info, args.out_format) as writer:
                session.take(src.blocks(), writer, predict)
                if session.failure is not None and not session.events:
                    raise session.failure  # nothing to keep: no empty file either
        if timer is not None:
            timer.cancel()
        if session.failure is not None:
            kept = f"; the {session.events:,} events received before are in {args.out}" if args.out else ""
            raise NeurodataError(f"{session.failure}{kept}") from None
        seconds = time.monotonic() - start
        result = {
            "source": src.source,
            "output": args.out,
            "events": session.events,
            "predictions": session.predictions,
            "interrupted": session.interrupted,
            "seconds": round(seconds, 3),
            "stats": src.stats.to_dict(seconds),
            "stats_line": src.stats.line(seconds),
        }
    return result, 130 if session.interrupted else 0


def load_run_model(run_dir: str, window_us: int | None):
    from neurodata.live.inference import load_run_model

    return load_run_model(run_dir, window_us)


def predictor(args: argparse.Namespace, loaded, info, stack: contextlib.ExitStack):
    """A callable that feeds blocks to the run's model (stateful for as long as ``stack`` is open)
    and prints each window's prediction; events are shrunk to the run's sensor size first when
    the run trained on downsampled frames."""
    from neurodata.live.inference import StreamClassifier, streaming
    from neurodata.transforms import Downsample

    classifier = StreamClassifier(loaded.model, loaded.spec, hop_us=args.hop_us)
    stack.enter_context(streaming(loaded.model))
    shrink = None
    if loaded.downsample_to is not None:
        if not info.width or not info.height:
            raise NeurodataError(f"--run {args.run_dir}: the run downsampled its input; the source does not say its size")
        polarities = int(loaded.spec["sensor_size"][2])
        shrink = Downsample(sensor_size=(info.width, info.height, polarities), target_size=loaded.downsample_to)

    def predict(block) -> int:
        made = classifier.push(shrink(block) if shrink is not None else block)
        for prediction in made:
            if args.json:
                print(json.dumps(prediction._asdict()), flush=True)
            else:
                print(f"window {prediction.t_start}-{prediction.t_end} us: class {prediction.label}", flush=True)
        return len(made)

    return predict


def render(result: dict) -> str:
    rows = [("source", result["source"]), ("events", f"{result['events']:,}")]
    if result["output"]:
        rows.append(("written to", result["output"]))
    if result["predictions"]:
        rows.append(("predictions", result["predictions"]))
    if result["interrupted"]:
        rows.append(("interrupted", "yes (file finalised up to the last event received)"))
    rows.append(("stats", result["stats_line"]))
    return table(rows)


def run(args: argparse.Namespace) -> int:
    if args.events is not None and args.events <= 0:
        raise NeurodataError(f"--events must be positive, got {args.events}")
    if args.duration is not None and args.duration <= 0:
        raise NeurodataError(f"--duration must be positive, got {args.duration}")
    if args.hop_us is not None and args.run_dir is None:
        raise NeurodataError("--hop-us slides the windows that --run classifies; give --run RUN_DIR with it")
    result, code = record(args)
    emit(result, args.json, render)
    return code


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("live",)
    p.add_argument(
        "source",
        help="tcp://HOST:PORT or unix:///PATH (DV network stream), udp://HOST:PORT?format=..., "
        "- (RAW on stdin), a pipe or growing RAW file, or a recording (with --realtime)",
    )
    p.add_argument("--out", help="record to this file (.aedat4, .raw, .dat, .npz, .h5, ...)")
    add_out_format(p)
    p.add_argument("--format", help="the source's format where the bytes do not say (evt2, evt3)")
    p.add_argument("--follow", action="store_true", help="keep reading a RAW file that is still growing")
    p.add_argument("--realtime", action="store_true", help="play a recording at its own pace")
    p.add_argument("--speed", type=number(float, above=0), default=1.0, help="with --realtime, the pace multiplier")
    p.add_argument("--events", type=number(int, minimum=1), help="stop after exactly N events")
    p.add_argument("--duration", type=number(float, above=0, maximum=1e7), help="stop after S seconds")
    p.add_argument("--run", dest="run_dir", help="a `neurodata train` run folder: classify sliding windows with its model")
    p.add_argument(
        "--window-us", type=number(int, minimum=1), help="with --run, the window length in us (needed when the run framed whole samples)"
    )
    p.add_argument("--hop-us", type=number(int, minimum=1), help="with --run, the slide between windows (default: the window)")
    p.add_argument("--no-reconnect", action="store_true", help="end on a reset or refused connection")
    p.add_argument("--width", type=number(int, minimum=1, maximum=65536), help="sensor width for sources that do not carry it (UDP, RAW)")
    p.add_argument("--height", type=number(int, minimum=1, maximum=65536), help="sensor height for sources that do not carry it")
    p.add_argument("--json", action="store_true", help="print one JSON object (predictions as JSON lines)")
    p.set_defaults(run=run)
