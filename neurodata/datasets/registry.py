"""The dataset registry: each dataset is one small module declaring a :class:`DatasetSpec`.

A spec says what to download (resources with checksums and mirrors), how to find the dataset
among the archives' members, how it splits into independent work units, and how a unit decodes into
labelled samples. The ``prepare`` pipeline (:mod:`neurodata.datasets.prepare`) does the rest:
download, verify, read the archives in place, decode units in parallel and write the Zarr cache.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NeurodataError

if TYPE_CHECKING:
    from .trees import FileTree

DATASET_MODULES = ("dvs128", "nmnist", "cifar10dvs", "esimagenet")


@dataclass(frozen=True)
class Sample:
    """One labelled sample: its events, integer label (from 0) and where it came from.

    Attributes:
        events: The sample's event array.
        label: Class index, from 0.
        source: The file (and window) it was decoded from, for messages.
    """

    events: np.ndarray
    label: int
    source: str


@dataclass(frozen=True)
class Unit:
    """An independent piece of preparation work: a stable id and the files it reads.

    Attributes:
        split: "train" or "test".
        uid: The unit's stable id.
        files: Names of the files it reads, in the dataset's tree.
        params: Extra ``(name, value)`` pairs the dataset's ``decode`` reads (e.g. the label).
    """

    split: str
    uid: str
    files: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """Everything ``prepare`` needs to know about one dataset.

    Attributes:
        name: Registry name (the module's name, e.g. "nmnist").
        title: Name for people.
        rules_version: Version of the ``plan`` / ``decode`` rules, recorded in the cache's attributes.
        sensor_size: ``(width, height, polarities)`` of the samples.
        class_names: Name of each label, by index.
        resources: The downloadable archives (:class:`neurodata.datasets.resource.Resource`).
        locate: Finds the dataset's folder in a :class:`~neurodata.datasets.trees.FileTree` (its
            archives' members or a folder's files): ``""`` for the root, else ``"a/b/"``.
        plan: Splits the dataset into :class:`Unit` s, given the tree, that folder and the resolved options.
        decode: Turns one unit into samples, given the tree and the resolved options.
        manual_download: How to fetch the data by hand, when it cannot be downloaded.
        manual_md5: Published md5 of the files users fetch by hand, by file name.
        options: Each option's allowed values, the first being the default.
        notes: Caveats shown to users.
        sensor_size_for: The sensor size for given options, when an option changes the geometry.
        decodes: The event formats ``decode`` reads (their kernels are loaded while archives are listed).
    """

    name: str
    title: str
    rules_version: str
    sensor_size: tuple[int, int, int]
    class_names: tuple[str, ...]
    resources: tuple  # of neurodata.datasets.download.Resource
    locate: Callable[[FileTree], str]
    plan: Callable[[FileTree, str, dict], list[Unit]]
    decode: Callable[[FileTree, Unit, dict], list[Sample]]
    manual_download: str | None = None
    manual_md5: dict[str, str] = field(default_factory=dict)  # published md5 of files users fetch by hand
    options: dict[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # option -> allowed values (first = default)
    notes: str = ""
    sensor_size_for: Callable[[dict], tuple[int, int, int]] | None = (
        None  # when an option changes the geometry
    )
    decodes: tuple[str, ...] = ()

    def expected_md5(self, filename: str) -> str | None:
        """The published md5 of this dataset's file ``filename``, when it is known."""
        for resource in self.resources:
            if resource.filename == filename:
                return resource.md5
        return self.manual_md5.get(filename)

    def file_names(self) -> tuple[str, ...]:
        """The names this dataset's archives are published under (downloaded or fetched by hand)."""
        return (*(r.filename for r in self.resources), *self.manual_md5)

    def geometry(self, options: dict) -> tuple[int, int, int]:
        """The sensor size of samples prepared with ``options``."""
        return self.sensor_size_for(options) if self.sensor_size_for else self.sensor_size

    def resolve_options(self, given: dict[str, str] | None) -> dict[str, str]:
        """The options ``given`` (or none) with defaults filled in.

        Raises:
            NeurodataError: For an unknown option or value, listing the choices.
        """
        given = dict(given or {})
        resolved = {}
        for key, allowed in self.options.items():
            value = given.pop(key, allowed[0])
            if value not in allowed:
                raise NeurodataError(
                    f"{self.name}: option {key}={value!r} is not one of {', '.join(allowed)}"
                )
            resolved[key] = value
        if given:
            raise NeurodataError(
                f"{self.name}: unknown option(s) {', '.join(given)}; known: {', '.join(self.options) or 'none'}"
            )
        return resolved


def get_dataset(name: str) -> DatasetSpec:
    """The registered dataset called ``name``."""
    if name not in DATASET_MODULES:
        raise NeurodataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_MODULES)}")
    return importlib.import_module(f"{__package__}.{name}").SPEC


def all_datasets() -> list[DatasetSpec]:
    """Every registered dataset's spec, in registry order."""
    return [get_dataset(name) for name in DATASET_MODULES]


def batched(items: list, size: int) -> list[list]:
    """Consecutive groups of ``size`` items (the last may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
