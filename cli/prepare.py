"""``neurodata prepare NAME``: published archives to a verified Zarr cache, resumably."""

from __future__ import annotations

import argparse
import json
import sys

from neurodata.datasets.prepare import prepare

from .output import emit, table


def parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"neurodata prepare: --option expects KEY=VALUE, got {pair!r}")
        options[key] = value
    return options


def render(summary: dict) -> str:
    rows = [("cache", summary["url"]), ("dataset", summary["name"])]
    for split, s in summary["splits"].items():
        rows.append((f"{split}", f"{s['n_samples']:,} samples, {s['n_events']:,} events"))
    bpe = summary["bytes_per_event"]
    rows += [
        ("classes", summary["n_classes"]),
        ("on disk", f"{summary['bytes_on_disk'] / 2**20:,.1f} MiB ({bpe:.2f} bytes/event)" if bpe else "-"),
        ("seconds", summary["seconds"]),
    ]
    return table(rows)


def run(args: argparse.Namespace) -> int:
    def progress_line(event: dict) -> None:
        if args.json:
            print(json.dumps(event), file=sys.stderr)
        elif event.get("stage") in ("download", "extract", "decode"):
            detail = event.get("file") or f"{event.get('parts')} parts on {event.get('workers')} worker(s)"
            print(f"{event['stage']}: {detail}", file=sys.stderr)

    summary = prepare(
        args.name, source=args.source, root=args.root, workers=args.workers, options=parse_options(args.option),
        progress=not args.json, callback=progress_line,
    )
    emit(summary, args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("prepare", help="download, verify, extract and cache a dataset")
    p.add_argument("name", help="dataset name (see `neurodata datasets`)")
    p.add_argument("--source", help="local archive, extracted folder, or fsspec URL instead of the mirrors")
    p.add_argument("--root", help="where caches live (default: $NEURODATA_HOME or the user cache folder)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. convention=spikingjelly for cifar10dvs")
    p.add_argument("--json", action="store_true", help="print one JSON summary (progress as JSON lines on stderr)")
    p.set_defaults(run=run)
