"""``neurodata prepare NAME``: published archives to a verified Zarr cache, resumably."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import Executor

from neurodata.cache.layout import DEFAULT_CODEC, EVENT_CODECS
from neurodata.datasets.prepare import prepare
from neurodata.errors import NeurodataError
from neurodata.workers import usable_cores

from .output import emit, table


def parse_options(pairs: list[str], flag: str) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise NeurodataError(f"{flag} expects KEY=VALUE, got {pair!r}")
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


@contextlib.contextmanager
def dask_executor(address: str) -> Iterator[Executor]:
    """A ``concurrent.futures`` executor on the dask scheduler at ``address`` (disconnects on exit)."""
    try:
        from distributed import Client
    except ImportError:
        raise NeurodataError(
            "--scheduler needs dask.distributed (pip install 'dask[distributed]')"
        ) from None
    with Client(address, timeout="30s") as client:
        yield client.get_executor()


def run(args: argparse.Namespace) -> int:
    def progress_line(event: dict) -> None:
        if args.json:
            print(json.dumps(event), file=sys.stderr, flush=True)
        elif event.get("stage") in ("download", "verify", "extract", "wait") and "done" not in event:  # not a bar's step
            print(f"{event['stage']}: {event.get('file') or event.get('reason')}", file=sys.stderr)
        elif event.get("stage") == "unverified":
            print(f"warning: {event['file']} is unverified: {event['reason']}", file=sys.stderr)
        elif event.get("stage") == "decode" and "parts" in event:
            where = f"{event['workers']} worker(s)" if isinstance(event["workers"], int) else event["workers"]
            print(f"decode: {event['parts']} parts on {where}", file=sys.stderr)

    executor = dask_executor(args.scheduler) if args.scheduler else contextlib.nullcontext()
    with executor as pool:
        summary = prepare(
            args.name,
            source=args.source or None,
            root=args.root,
            workers=usable_cores() if args.workers is None else args.workers,
            options=parse_options(args.option, "--option"),
            progress=False if args.json else None,
            callback=progress_line,
            executor=pool,
            cache_url=args.cache_url,
            storage_options=parse_options(args.storage_option, "--storage-option") or None,
            codec=args.codec,
            mirror=args.mirror,
            verify=not args.no_verify,
            keep_raw=args.keep_raw,
        )
    emit(summary, args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("prepare",)
    p.add_argument("name", help="dataset name (see `neurodata datasets`)")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="your own copy instead of the mirrors: an archive (path or fsspec URL), a folder holding the "
        "downloaded archives, or an extracted folder; repeatable (--source Train.zip --source Test.zip)",
    )
    p.add_argument(
        "--mirror",
        metavar="URL/",
        help="base URL serving the published files under their names (URL/Train.zip), instead of the "
        "published URLs",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="accept an archive whose checksum differs from the published one (a repacked copy); the "
        "cache records it as unverified, with its sha256 (see `neurodata info CACHE`)",
    )
    p.add_argument(
        "--keep-raw",
        action="store_true",
        help="keep what was extracted for this run (RAR/7z archives, or every archive with --scheduler) "
        "under ROOT/raw/NAME/extracted; zip and tar archives are read in place and never extracted",
    )
    p.add_argument(
        "--root",
        help="local folder for downloads, extraction and caches "
        "(default: $NEURODATA_HOME or the user cache folder)",
    )
    p.add_argument(
        "--cache-url",
        metavar="URL",
        help="write the cache to URL/<name>.zarr instead of the root (a folder or fsspec URL, e.g. s3://bucket/caches)",
    )
    p.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec option for --cache-url, e.g. endpoint_url=http://127.0.0.1:9000 (repeatable)",
    )
    p.add_argument(
        "--codec",
        choices=sorted(EVENT_CODECS),
        default=None,
        help=f"event compression of the cache: zstd is smaller, lz4 faster to read (default: the codec of "
        f"a finished cache already there, else {DEFAULT_CODEC})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding processes (default: the usable CPU cores, at most 8)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run decoding and commit on an existing dask scheduler, e.g. tcp://10.0.0.5:8786 "
        "(its workers must see --source/--root at the same paths)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option, e.g. convention=spikingjelly for cifar10dvs",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON summary (progress as JSON lines on stderr)"
    )
    p.set_defaults(run=run)
