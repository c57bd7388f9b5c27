"""The ``neurodata`` command: one entry point, one subcommand module per job."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import warnings
from typing import NamedTuple, NoReturn

from neurodata import __version__
from neurodata.diskspace import disk_full, is_disk_full
from neurodata.errors import NeurodataError

from .output import fail


class Command(NamedTuple):
    """One subcommand: the module that builds its parser and runs it, and its one-line help."""

    module: str
    help: str


# Subcommand modules are imported only when their command runs: ``neurodata --help`` and every
# command stay clear of the imports the others need (Numba, zarr, torch).
COMMANDS: dict[str, Command] = {
    "info": Command("info", "summarise a recording (format, events, time span, sensor) or a prepared cache"),
    "convert": Command("convert", "convert a recording to .npz, .h5 or another event format"),
    "formats": Command("formats", "list the readable and writable event formats"),
    "prepare": Command("prepare", "download, verify, extract and cache a dataset"),
    "datasets": Command("datasets", "list the dataset registry and what is prepared locally"),
    "verify": Command("datasets", "re-check a prepared cache's integrity"),
    "frames": Command("frames", "precompute a representation (e.g. frames) into a cache"),
    "simulate": Command(
        "simulate", "simulate a DVS watching a video (any FFmpeg format), an image folder or an .npy frame stack"
    ),
    "train": Command("train", "train a model-zoo SNN on a prepared dataset (frames), with checkpoints and --resume"),
    "export": Command("export", "export a training run's model to NIR, Loihi 2, Xylo or Speck"),
    "view": Command("view", "render events (ON/OFF colours), stored frames or voxel grids to PNG/GIF/MP4 or a window"),
    "plot": Command("plot", "draw a training run's loss/accuracy/firing-rate curves to PNG"),
    "demo": Command(
        "demo", "end to end on synthetic data: generate, prepare, train a spiking network on CPU, evaluate"
    ),
    "live": Command("live", "record (and classify) a live event stream"),
    "replay": Command("replay", "serve a recording over DV TCP/unix or UDP, as a camera would"),
}


class UsageError(NeurodataError):
    """A command line that argparse rejects, reported like every other error (exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors raise :class:`UsageError` (one line, JSON with --json) instead of
    printing the usage block; subcommand parsers are made of this class too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _WithHelp:
    """The subparsers as a subcommand module sees them: each command gets its help from COMMANDS."""

    def __init__(self, subparsers) -> None:
        self._subparsers = subparsers

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        kwargs.setdefault("help", COMMANDS[name].help)
        kwargs.setdefault("description", COMMANDS[name].help)
        return self._subparsers.add_parser(name, **kwargs)


def requested_command(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), if it is one we have."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; with ``argv``, only the subcommand it names is built in full.

    Args:
        argv: the arguments to be parsed; None builds every subcommand's parser (slower: it imports
            every subcommand module).
    """
    parser = Parser(
        prog="neurodata", description="Event-camera data: decode, convert, inspect."
    )
    parser.add_argument("--version", action="version", version=f"neurodata {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    with_help = _WithHelp(subparsers)
    requested = None if argv is None else requested_command(argv)
    wanted = {n for n, c in COMMANDS.items() if argv is None or (requested and c.module == COMMANDS[requested].module)}
    for name, command in COMMANDS.items():
        if name in subparsers.choices:  # a module that adds two commands (datasets, verify)
            continue
        if name in wanted:
            importlib.import_module(f"{__package__}.{command.module}").add_parser(with_help)
        else:  # listed in --help, never parsed here: a placeholder keeps its module's imports away
            subparsers.add_parser(name, help=command.help)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the CLI prints it: one line in the style of its errors, without the source line."""
    return f"neurodata: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors print one readable line (and JSON with --json), never a traceback;
    warnings print one line too.

    Args:
        argv: The arguments after ``neurodata``; None: the command line's.
    """
    previous, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return _run_command(sys.argv[1:] if argv is None else argv)
    finally:
        warnings.formatwarning = previous


def _run_command(argv: list[str]) -> int:
    as_json = "--json" in argv  # before parsing succeeds, so that usage errors honour it too
    try:
        args = build_parser(argv).parse_args(argv)
        as_json = getattr(args, "json", False)
        return args.run(args)
    except NeurodataError as err:
        return fail(str(err), as_json)
    except KeyboardInterrupt:
        return fail("interrupted", as_json, code=130)
    except BrokenPipeError:
        return 0
    except OSError as err:
        if is_disk_full(err):  # a full disk where no command translated it still gets one line
            return fail(str(disk_full(err.filename or ".", None)), as_json)
        if err.filename is None:  # not about a path the user gave: a fault of ours, with its traceback
            raise
        return fail(f"{err.filename}: {err.strerror or err}", as_json)


def run() -> NoReturn:
    """The ``neurodata`` program: :func:`main` on the command line's arguments, then exit with its status.

    What is left is frozen out of the garbage collector first: the interpreter's last collections
    would walk every object Numba and zarr loaded only to free memory that the exit frees anyway.
    Open files are closed and ``atexit`` handlers run as usual; :func:`main` is for calls in a process.
    Not where Triton was loaded (training imports it through torch's compiler wherever it is
    installed): its bindings (nanobind) print a page of "leaked instances" for objects that the
    last collections did not free.
    """
    status = main()
    if "triton" not in sys.modules:
        gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
