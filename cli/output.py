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


def number(kind: type = float, minimum: float | None = None, above: float | None = None, maximum: float | None = None):
    """An argparse ``type=`` for a finite number of ``kind`` (float or int) in a range: ``minimum``
    (inclusive), ``above`` (exclusive) and ``maximum`` (inclusive) when given. A value outside it is a
    usage error naming the option, as argparse reports a value it cannot parse.

    Args:
        kind: ``float`` or ``int``.
        minimum: The smallest value allowed.
        above: Values must be greater than this.
        maximum: The largest value allowed.
    """
    bounds = [f">= {minimum:g}"] if minimum is not None else []
    bounds += [f"> {above:g}"] if above is not None else []
    bounds += [f"<= {maximum:g}"] if maximum is not None else []
    wanted = ("a whole number" if kind is int else "a finite number") + (f" {' and '.join(bounds)}" if bounds else "")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or value != value  # NaN
            or value in (float("inf"), float("-inf"))
            or (minimum is not None and value < minimum)
            or (above is not None and value <= above)
            or (maximum is not None and value > maximum)
        ):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def width_x_height(text: str) -> tuple[int, int]:
    """An argparse ``type=`` for ``WIDTHxHEIGHT`` (``128x128``): two whole numbers >= 1.

    Args:
        text: The option's value.
    """
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 128x128, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be >= 1, got {text!r}")
    return width, height
