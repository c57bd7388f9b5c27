"""``neurodata info``: what a recording holds (format, events, time span, sensor size, rate)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

import numpy as np

import neurodata as nd

from .output import byte_progress, emit, table


def recording_summary(path: str, format: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Stream a recording once and summarise it; memory does not grow with the file size."""
    count = on = 0
    t_first = t_last = t_min = t_max = None
    x_max = y_max = -1
    with (
        nd.open_recording(path, format) as rec,
        byte_progress(rec.size, os.path.basename(path), quiet) as bar,
    ):
        for chunk in rec.chunks():
            if t_first is None:
                t_first = int(chunk["t"][0])
            t_last = int(chunk["t"][-1])
            lo, hi = int(chunk["t"].min()), int(chunk["t"].max())
            t_min = lo if t_min is None else min(t_min, lo)
            t_max = hi if t_max is None else max(t_max, hi)
            x_max = max(x_max, int(chunk["x"].max()))
            y_max = max(y_max, int(chunk["y"].max()))
            on += int(np.count_nonzero(chunk["p"]))
            count += len(chunk)
            bar.update(rec.position - bar.n)
        info = rec.info
    span = (t_max - t_min) if count else 0
    return {
        "path": path,
        "format": info.format,
        "events": count,
        "t_first": t_first,
        "t_last": t_last,
        "duration_us": span,
        "width": info.width,
        "height": info.height,
        "x_max": x_max if count else None,
        "y_max": y_max if count else None,
        "on_fraction": on / count if count else None,
        "events_per_s": count / (span / 1e6) if span > 0 else None,
        "extra": info.extra,
    }


def render(summary: dict[str, Any]) -> str:
    if summary["width"] is not None:
        size = f"{summary['width']} x {summary['height']}"
    elif summary["x_max"] is None:
        size = "unknown (no events to bound it)"
    else:
        size = f"unknown (events span x <= {summary['x_max']}, y <= {summary['y_max']})"
    rate = f"{summary['events_per_s']:,.0f}" if summary["events_per_s"] else "-"
    rows = [
        ("file", summary["path"]),
        ("format", summary["format"]),
        ("events", f"{summary['events']:,}"),
        ("first / last t", "- (no events)" if summary["t_first"] is None else f"{summary['t_first']} / {summary['t_last']} us"),
        ("duration", f"{summary['duration_us'] / 1e6:.6f} s"),
        ("sensor", size),
        ("events/s", rate),
    ]
    if summary["on_fraction"] is not None:
        rows.append(("ON fraction", f"{summary['on_fraction']:.3f}"))
    return table(rows)


def write_demo_recording(folder: str) -> str:
    """Write the built-in demo recording (a synthetic rotating bar, 128x128, AEDAT 4) and return its path."""
    from neurodata.synthetic import rotating_bar

    path = os.path.join(folder, "rotating_bar_demo.aedat4")
    info = nd.RecordingInfo(format="aedat4", width=128, height=128)
    nd.write(path, rotating_bar(width=128, height=128), info=info)
    return path


def is_cache(path: str) -> bool:
    """A Zarr store (local folder or URL) holding a ``zarr.json``, rather than a recording file; a
    local folder without one is neither (an error naming it)."""
    if "://" in path:
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        return fs.exists(root.rstrip("/") + "/zarr.json")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "zarr.json")):
        raise nd.NeurodataError(f"{path}: a folder that is neither a neurodata cache (no zarr.json) nor a recording")
    return os.path.isdir(path)


def render_cache(summary: dict[str, Any]) -> str:
    rows = [("cache", summary["url"]), ("dataset", summary["name"]), ("complete", summary["complete"])]
    for split, s in summary["splits"].items():
        rows.append((split, f"{s['n_samples']:,} samples, {s['n_events']:,} events"))
    classes = summary["class_names"] or []
    more = " ..." if len(classes) > 11 else ""
    rows.append(("classes", f"{len(classes)}: {', '.join(classes[:11])}{more}"))
    rows.append(("sensor", summary["sensor_size"]))
    if summary["bytes_per_event"]:
        mib = summary["bytes_on_disk"] / 2**20
        rows.append(("on disk", f"{mib:,.1f} MiB, {summary['bytes_per_event']:.2f} bytes/event"))
    for name, sums in (summary["source_checksums"] or {}).items():
        if "unverified" in sums:
            rows.append((name, f"UNVERIFIED ({sums['unverified']}): sha256 {sums.get('sha256')}"))
        else:
            rows.append((name, f"md5 {sums.get('md5')}"))
    if summary.get("plot"):
        rows.append(("plot", summary["plot"]))
    return table(rows)


def plot_cache(url: str, out: str | None, quiet: bool) -> str | None:
    """Draw the cache's class balance, events per sample and heat map to ``out`` (PNG), or to a window
    when ``out`` is None; returns ``out``."""
    from tqdm import tqdm

    from neurodata.cache import open_cache
    from neurodata.localfs import atomic_output
    from neurodata.viz import cache_overview, has_display, overview_figure
    from neurodata.viz.writers import output_kind, pyplot

    if out is not None and output_kind(out) != "png":
        raise nd.NeurodataError(f"{out}: --plot writes PNG (give --out FILE.png)")
    if out is None and not has_display():
        raise nd.NeurodataError("no display to open a window on (DISPLAY is not set): give --out FILE.png")
    plt = pyplot()
    total = sum(s.n_samples for s in open_cache(url).splits.values())
    with tqdm(total=total, desc="samples", leave=False, disable=quiet or not sys.stderr.isatty()) as bar:
        overview = cache_overview(url, bar.update)
    figure = overview_figure(overview)
    if out is None:
        plt.show()
    else:
        with atomic_output(out, durable=False) as fileobj:
            figure.savefig(fileobj, format="png", dpi=100)
    plt.close(figure)
    return out


def run(args: argparse.Namespace) -> int:
    if args.out and not args.plot:
        raise nd.NeurodataError("--out goes with --plot")
    if args.demo:
        folder = tempfile.mkdtemp(prefix="neurodata-demo-")
        path = write_demo_recording(folder)
        if not args.json:
            print(f"demo: wrote a synthetic 128x128 rotating-bar recording to {path}\n")
    elif args.file:
        path = args.file
    else:
        raise nd.NeurodataError("give a FILE, or --demo for the built-in synthetic recording")
    if args.plot and not is_cache(path):
        raise nd.NeurodataError(
            f"{path}: --plot draws a prepared cache; this is a recording (see it with neurodata view)"
        )
    if is_cache(path):
        from neurodata.cache import cache_info  # zarr: only for caches, not for a recording

        summary = cache_info(path)
        if args.plot:
            summary["plot"] = plot_cache(path, args.out, quiet=args.json)
        emit(summary, args.json, render_cache)
    else:
        emit(recording_summary(path, args.in_format, quiet=args.json), args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
    )
    p.add_argument("file", nargs="?", help="a recording or a cache (path or fsspec URL)")
    p.add_argument("--in-format", help="force the input format instead of detecting it (as in convert)")
    p.add_argument("--format", dest="in_format", help=argparse.SUPPRESS)  # the earlier spelling
    p.add_argument("--demo", action="store_true", help="summarise a built-in synthetic recording")
    p.add_argument(
        "--plot", action="store_true", help="a cache: draw class balance, events per sample and a heat map"
    )
    p.add_argument("--out", help="with --plot: the PNG to write (default: a window)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
