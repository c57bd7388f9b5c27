"""Errors raised in worker processes reach the parent pickled: each must come back as it was.

An error whose ``__init__`` takes other arguments than its message did not: unpickling called it
with the message alone and failed, so ``neurodata prepare`` on an archive with a damaged member
crashed with ``BrokenProcessPool`` and a traceback (the default, several workers) instead of
naming the member (one worker).
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import hw
import neurodata
import snn
from hw.artefacts import HwError
from hw.nir.errors import NIRError
from neurodata.datasets.checksum import ChecksumError
from neurodata.datasets.members import UnsafeArchiveError
from neurodata.datasets.transport import MirrorError
from neurodata.diskspace import DiskFullError
from neurodata.errors import FormatError, UnknownFormatError
from neurodata.formats.flatbuffers import FlatBufferError
from snn.convert.errors import ConversionError
from snn.train.fit import ResumeError

INSTANCES = [
    FormatError("a.zip:Train/3/00001.bin", 4000, "truncated record"),
    FormatError(None, None, "no header"),
    UnknownFormatError("x.dat", 0, "no decoder"),
    UnsafeArchiveError("a.tar", "../evil", "outside the target folder"),
    MirrorError("404 at https://example.org/a.zip", True),
    ChecksumError("a.zip", "md5", "abc", "def", "delete it"),
    FlatBufferError(12, "offset outside the buffer"),
    DiskFullError("/data/cache", 10_000, 12),
    ConversionError(["0: NaN", "3: unsupported"], "use ReLU"),
    NIRError(["layer '0': weight: NaN or infinite values"]),
    HwError("xylo", ["0 (Linear): weight holds NaN or infinite values"]),
    ResumeError("runs/a/last.pt", ["lr: 0.5 (the run has 0.01)"]),
]


@pytest.mark.parametrize("error", INSTANCES, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)


def _own_error_classes() -> list[type]:
    classes = set()
    for package in (neurodata, snn, hw):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                module = importlib.import_module(info.name)
            except ImportError:  # an optional extra that is not installed
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    classes.add(cls)
    return sorted(classes, key=lambda c: c.__qualname__)


def test_every_error_with_its_own_arguments_is_listed_above():
    """A new error class whose ``__init__`` differs from ``Exception``'s needs a ``__reduce__`` and a
    place in INSTANCES (the test above then checks it)."""
    tested = {type(e) for e in INSTANCES}
    own_init = [c for c in _own_error_classes() if "__init__" in vars(c) and not issubclass(c, Warning)]
    assert own_init, "no error class found: the walk over the packages is broken"
    missing = [c.__qualname__ for c in own_init if c not in tested]
    assert not missing, f"error classes with their own __init__ not checked for pickling: {missing}"
