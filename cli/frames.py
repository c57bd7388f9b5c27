"""``neurodata frames CACHE --spec ...``: precompute a representation into a cache for fast loading."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from neurodata.errors import NeurodataError

from .output import emit, number


def parse_spec(text: str) -> dict[str, Any]:
    """``'{"type": "frame", "n_time_bins": 16}'`` or ``frame:n_time_bins=16,dtype=int16`` -> spec dict."""
    if text.lstrip().startswith("{"):
        try:
            spec = json.loads(text)
        except ValueError as err:
            raise NeurodataError(f"--spec: not valid JSON ({err})") from None
        if not isinstance(spec, dict):
            raise NeurodataError("--spec: a JSON spec must be an object")
        return spec
    kind, _, rest = text.partition(":")
    spec: dict[str, Any] = {"type": kind.strip()}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise NeurodataError(f"--spec: expected key=value, got {item!r} in {text!r}")
        try:
            spec[key.strip()] = json.loads(value)
        except ValueError:
            spec[key.strip()] = value.strip()
    return spec


def spec_culprits(spec: dict[str, Any], err: Exception) -> str:
    """``--spec key=value`` for each spec item an error message names (by key or by value), so a
    message like "invalid literal for int(): 'abc'" says which key it was; empty when none."""
    message = str(err)

    def named(text: str) -> bool:
        return re.search(rf"(?<![\w.-]){re.escape(text)}(?![\w.-])", message) is not None

    items = [
        f"{key}={value!r}"
        for key, value in spec.items()
        if (named(key) and key != "type") or named(str(value))  # "type" is a common word in messages
    ]
    return f"--spec {', '.join(items)}: " if items else ""


def run(args: argparse.Namespace) -> int:
    from neurodata.loaders.precompute import precompute  # imports torch: only when this command runs
    from neurodata.loaders.source import resolve_store

    spec = parse_spec(args.spec)
    url = resolve_store(args.cache, args.root)
    try:
        written = precompute(
            url,
            spec,
            args.split or None,
            workers=args.workers,
            progress=not args.json and sys.stderr.isatty(),
            overwrite=args.overwrite,
        )
    except (ValueError, TypeError, FileNotFoundError) as err:
        message = str(err).removeprefix(f"{url}: ")  # the cache named once
        raise NeurodataError(f"{url}: {spec_culprits(spec, err)}{message}") from None

    def render(result: dict) -> str:
        return "\n".join(f"{split}: {where}" for split, where in result["written"].items())

    emit({"cache": url, "spec": spec, "written": written}, args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("frames",)
    p.add_argument("cache", help="dataset name, cache path or fsspec URL")
    p.add_argument(
        "--spec",
        required=True,
        help='representation spec: frame:n_time_bins=16 or JSON {"type": "frame", "n_time_bins": 16}; '
        "sensor_size defaults to the cache's",
    )
    p.add_argument("--split", action="append", help="split to compute (repeatable; default: all)")
    p.add_argument("--root", help="where caches live, for a dataset name (default: $NEURODATA_HOME)")
    p.add_argument("--workers", type=number(int, minimum=1), default=1, help="processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="recompute even when a usable copy is stored")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
