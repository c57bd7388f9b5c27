"""The ``neurodata`` command: one entry point, one subcommand module per job."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from neurodata import __version__
from neurodata.errors import NeurodataError

from . import (
    convert,
    datasets,
    demo,
    formats,
    frames,
    info,
    live,
    plot,
    prepare,
    replay,
    simulate,
    train,
    view,
)
from .output import fail

COMMANDS = (info, convert, formats, prepare, datasets, frames, simulate, train, plot, view, demo, live, replay)


class UsageError(NeurodataError):
    """A command line that argparse rejects, reported like every other error (exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors raise :class:`UsageError` (one line, JSON with --json) instead of
    printing the usage block; subcommand parsers are made of this class too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="neurodata", description="Event-camera data: decode, convert, inspect."
    )
    parser.add_argument("--version", action="version", version=f"neurodata {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors print one readable line (and JSON with --json), never a traceback."""
    argv = sys.argv[1:] if argv is None else argv
    as_json = "--json" in argv  # before parsing succeeds, so that usage errors honour it too
    try:
        args = build_parser().parse_args(argv)
        as_json = getattr(args, "json", False)
        return args.run(args)
    except NeurodataError as err:
        return fail(str(err), as_json)
    except KeyboardInterrupt:
        return fail("interrupted", as_json, code=130)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
