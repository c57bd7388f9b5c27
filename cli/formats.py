"""``neurodata formats``: the event formats this installation reads and writes."""

from __future__ import annotations

import argparse

from neurodata.formats import FORMATS

from .output import emit


def run(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": s.name,
            "read": True,
            "write": s.make_writer is not None,
            "extensions": list(s.extensions),
            "description": s.description,
        }
        for s in FORMATS.values()
    ]

    def render(result: dict) -> str:
        lines = [f"{'name':<12}{'read':<6}{'write':<7}{'extensions':<18}description"]
        for r in result["formats"]:
            lines.append(
                f"{r['name']:<12}{'yes' if r['read'] else '-':<6}{'yes' if r['write'] else '-':<7}"
                f"{' '.join(r['extensions']):<18}{r['description']}"
            )
        return "\n".join(lines)

    emit({"formats": rows}, args.json, render)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("formats",)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
