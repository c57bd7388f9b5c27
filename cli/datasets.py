"""``neurodata datasets`` (the registry and what is prepared) and ``neurodata verify CACHE``."""

from __future__ import annotations

import argparse
from pathlib import Path

import fsspec

from neurodata.cache import verify_cache
from neurodata.datasets.registry import all_datasets
from neurodata.errors import NeurodataError
from neurodata.localfs import default_root

from .output import emit


def list_datasets(root: Path) -> list[dict]:
    rows = []
    for spec in all_datasets():
        prepared = sorted(str(p) for p in root.glob(f"{spec.name}*.zarr") if (p / "zarr.json").exists())
        rows.append(
            {
                "name": spec.name,
                "title": spec.title,
                "classes": len(spec.class_names),
                "sensor_size": list(spec.sensor_size),
                "download": "manual" if spec.manual_download else "automatic",
                "options": {k: list(v) for k, v in spec.options.items()},
                "prepared": prepared,
            }
        )
    return rows


def run_datasets(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else default_root()

    def render(result: dict) -> str:
        lines = [f"datasets under {result['root']}:"]
        for r in result["datasets"]:
            state = ", ".join(r["prepared"]) if r["prepared"] else "not prepared"
            lines.append(
                f"  {r['name']:<11} {r['title']:<15} {r['classes']:>4} classes  {r['download']:<9}  {state}"
            )
        return "\n".join(lines)

    emit({"root": str(root), "datasets": list_datasets(root)}, args.json, render)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    fs, root = fsspec.core.url_to_fs(args.cache)
    if not fs.exists(root):
        raise NeurodataError(f"{args.cache}: no such cache")
    report = verify_cache(args.cache, deep=args.deep)

    def render(result: dict) -> str:
        head = f"{result['url']}: {'OK' if result['ok'] else 'DAMAGED'} ({result['files_checked']} files, {result['bytes_checked']:,} bytes checked)"
        return "\n".join([head, *(f"  - {p}" for p in result["problems"])])

    emit(report.to_dict(), args.json, render)
    return 0 if report.ok else 1


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("datasets",)
    p.add_argument("--root", help="cache root (default: $NEURODATA_HOME or the user cache folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_datasets)
    v = subparsers.add_parser("verify",)
    v.add_argument("cache", help="cache path or fsspec URL")
    v.add_argument("--deep", action="store_true", help="also decode every sample's times")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.set_defaults(run=run_verify)
