"""How commands talk to people and programs: readable text by default, one JSON object with --json."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a bar is made: every command imports this module, few show a bar
    from tqdm import tqdm


def emit(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    """Print ``result`` as JSON (for programs) or through ``render`` (for people)."""
    if as_json:
        print(json.dumps(result, default=str))
    else:
        print(render(result))


def fail(message: str, as_json: bool, code: int = 2) -> int:
    """Report an error on stderr (and as JSON on stdout with --json); return the exit code."""
    if as_json:
        print(json.dumps({"error": message}))
    print(f"neurodata: error: {message}", file=sys.stderr)
    return code


def add_out_format(parser: argparse.ArgumentParser) -> None:
    """``--out-format``, the one spelling of the output event format (``--format`` stays as a hidden
    alias where a command used it before)."""
    parser.add_argument(
        "--out-format",
        help="output event format, e.g. evt2 for .raw (default: from the extension; .raw is evt3)",
    )


def byte_progress(total: int | None, label: str, quiet: bool = False) -> tqdm:
    """A bytes progress bar on stderr, shown only on a terminal and not when ``quiet``."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=label,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
        disable=True if quiet else None,
        file=sys.stderr,
    )


def table(rows: list[tuple[str, Any]]) -> str:
    """Two aligned columns of ``name: value`` lines."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
