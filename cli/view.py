"""``neurodata view FILE|CACHE``: events (ON/OFF colours), stored frames or voxel grids as a picture, an
animation or a window. Rendering is :mod:`neurodata.viz.render`'s; this module picks the clip, the
timing and the writer."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NamedTuple

from neurodata.errors import NeurodataError

from .info import is_cache
from .output import emit, number

DEFAULT_WINDOW_US = 50_000  # 20 pictures per second of recording: motion stays readable, files stay small
BIN_MS = 100.0  # display time of one time bin of a stored representation at --speed 1


def pick_split(splits: list[str], asked: str | None, url: str) -> str:
    """``asked``, else ``train`` when the cache has one, else its first split."""
    if asked is not None:
        return asked
    if not splits:
        raise NeurodataError(f"{url}: the cache has no splits")
    return "train" if "train" in splits else splits[0]


def load_clip(args: argparse.Namespace) -> Any:
    """The clip named on the command line: a recording file, or one sample of a cache."""
    from neurodata.cache import open_cache
    from neurodata.loaders.source import resolve_store
    from neurodata.viz import cache_clip, recording_clip
    from neurodata.viz.clips import TimeSpan

    path = args.source
    if "://" not in path and not os.path.exists(path) and "." in os.path.basename(path.rstrip("/")):
        raise NeurodataError(f"{path}: no such file or cache")
    url = resolve_store(path, args.root)
    if not is_cache(url):
        if args.split is not None or args.index is not None or args.stored is not None:
            raise NeurodataError(
                f"{path}: --split, --index and --stored apply to caches, not to recording files"
            )
        span = None
        if args.start_us or args.duration_us is not None:
            span = TimeSpan(args.start_us, args.duration_us)
        return recording_clip(url, args.in_format, span)
    if args.start_us or args.duration_us is not None:
        raise NeurodataError(f"{path}: --start-us and --duration-us apply to recording files, not to caches")
    split = pick_split(list(open_cache(url).splits), args.split, url)
    return cache_clip(url, split, args.index or 0, args.stored)


def chosen_clip(args: argparse.Namespace) -> Any:
    """The clip to show: :func:`load_clip`'s, turned into ``--spec``'s representation when given."""
    from neurodata.viz.clips import represented

    from .frames import parse_spec

    if args.spec is not None and args.stored is not None:
        raise NeurodataError("give --spec (compute a representation) or --stored (read one), not both")
    clip = load_clip(args)
    return represented(clip, parse_spec(args.spec)) if args.spec is not None else clip


def progress(iterable: Any, total: int, quiet: bool) -> Any:
    """A pictures progress bar on stderr, only on a terminal and not with --json."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="pictures", leave=False, disable=quiet or not sys.stderr.isatty())


class Playback(NamedTuple):
    """How a clip plays: ``window_us`` of events per picture (0 for representations), ``count``
    pictures, each shown ``period_ms``."""

    window_us: int
    count: int
    period_ms: float


def playback(clip: Any, kind: str | None, args: argparse.Namespace) -> Playback:
    """Events: one picture per ``--window-us`` (a PNG without it: the whole clip in one), each shown for
    its window divided by ``--speed``; representations: one per time bin, :data:`BIN_MS` each."""
    from neurodata.viz import window_count
    from neurodata.viz.clips import EVENTS

    if clip.kind != EVENTS:
        return Playback(0, len(clip.data), BIN_MS / args.speed)
    whole = kind == "png" and args.window_us is None
    window_us = clip.duration_us + 1 if whole else args.window_us or DEFAULT_WINDOW_US
    return Playback(window_us, window_count(clip.duration_us, window_us), window_us / 1000 / args.speed)


def run(args: argparse.Namespace) -> int:
    from neurodata.viz import has_display, montage, show, write_gif, write_mp4, write_png
    from neurodata.viz.writers import output_kind

    kind = output_kind(args.out) if args.out else None
    if kind is None and not has_display():
        raise NeurodataError(
            "no display to open a window on (DISPLAY is not set): give --out x.png, x.gif or x.mp4"
        )
    clip = chosen_clip(args)
    window_us, count, period_ms = playback(clip, kind, args)
    pictures = progress(clip.pictures(window_us), count, args.json)
    if kind is None:
        show(list(pictures), period_ms, clip.title)
    elif kind == "png":
        import numpy as np

        stack = np.stack(list(pictures))
        write_png(args.out, stack[0] if count == 1 else montage(stack))
    elif kind == "gif":
        write_gif(args.out, pictures, period_ms)
    else:
        write_mp4(args.out, pictures, period_ms)
    result = {
        "out": args.out,
        "source": clip.title,
        "kind": clip.kind,
        "pictures": count,
        "width": clip.geometry.width,
        "height": clip.geometry.height,
        "window_us": window_us or None,
        "period_ms": period_ms,
    }
    emit(result, args.json, lambda r: f"{r['source']}\n{r['pictures']} pictures -> {r['out'] or 'window'}")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("view")
    p.add_argument(
        "source", metavar="FILE|CACHE", help="a recording, or a cache (path, fsspec URL or dataset name)"
    )
    p.add_argument("--split", help="the cache split (default: train, else the first)")
    p.add_argument(
        "--index", type=int, help="the sample of the split (default 0; negative counts from the end)"
    )
    p.add_argument(
        "--stored",
        nargs="?",
        const="",
        metavar="KEY",
        help="show a representation stored by neurodata frames (KEY may be left out when one is stored)",
    )
    p.add_argument(
        "--spec",
        help="show the events as a representation: frame:n_time_bins=8, voxel_grid:n_time_bins=5, image "
        "(as neurodata frames --spec)",
    )
    p.add_argument("--out", help="x.png (one picture, or a grid of windows with --window-us), x.gif or x.mp4")
    p.add_argument(
        "--window-us",
        type=number(int, minimum=1),
        help=f"microseconds of events per picture (default {DEFAULT_WINDOW_US}; a PNG without it: the whole clip)",
    )
    p.add_argument(
        "--speed",
        type=number(float, above=0, maximum=1e6),
        default=1.0,
        help=f"playback speed: 1 plays events in real time, 0.1 ten times slower (time bins: {BIN_MS:g} ms each)",
    )
    p.add_argument(
        "--start-us",
        type=number(int, minimum=0),
        default=0,
        help="a recording: start this long after its first event (default 0)",
    )
    p.add_argument("--duration-us", type=number(int, minimum=1), help="a recording: show this long a part (default: to the end)")
    p.add_argument("--in-format", help="force the recording's format instead of detecting it")
    p.add_argument("--root", help="where caches live, for a dataset name (default: $NEURODATA_HOME)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
