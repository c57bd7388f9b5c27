"""N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS sensor on a moving platform.

``Train.zip`` and ``Test.zip`` hold one ``.bin`` per sample in folders named by digit; 60000 train
and 10000 test samples, 34x34 pixels. Labels are the digit (0..9). Samples are ordered by digit
folder, then file name.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NeurodataError
from ..reader import read
from .registry import DatasetSpec, Sample, Unit, batched
from .resource import Resource

FILES_PER_UNIT = 2000
MENDELEY = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}


def split_folder(root: Path, name: str) -> Path:
    """The folder called ``name`` (Train or Test) under ``root`` that holds digit folders."""
    for candidate in [root / name, *sorted(root.rglob(name))]:
        if candidate.is_dir() and any(candidate.glob("[0-9]")):
            return candidate
    raise NeurodataError(f"nmnist: no {name}/ folder with digit folders found under {root}")


def locate(root: Path) -> Path:
    """Check that the Train and Test folders are under ``root`` and return ``root`` (the spec's ``locate``)."""
    for name in SPLIT_FOLDERS.values():
        split_folder(root, name)  # both must be there
    return root


def plan(folder: Path, options: dict) -> list[Unit]:
    """Units of one digit's recordings per split under ``folder`` (the spec's ``plan``; no ``options``)."""
    units = []
    for split, name in SPLIT_FOLDERS.items():
        base = split_folder(folder, name)
        for digit in range(10):
            files = sorted(p.relative_to(folder).as_posix() for p in (base / str(digit)).glob("*.bin"))
            for i, group in enumerate(batched(files, FILES_PER_UNIT)):
                units.append(Unit(split, f"{name}-{digit}-{i:03d}", tuple(group), (("label", digit),)))
    return units


def decode(folder: Path, unit: Unit, options: dict) -> list[Sample]:
    """The recordings of ``unit`` under ``folder``, labelled with its digit (the spec's ``decode``; no ``options``)."""
    label = dict(unit.params)["label"]
    return [Sample(read(folder / name, format="nmnist"), label, name) for name in unit.files]


SPEC = DatasetSpec(
    name="nmnist",
    title="N-MNIST",
    rules_version="1",
    sensor_size=(34, 34, 2),
    class_names=tuple(str(d) for d in range(10)),
    resources=(
        Resource(
            "Train.zip",
            md5="20959b8e626244a1b502305a9e6e2031",
            urls=(MENDELEY + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded",),
        ),
        Resource(
            "Test.zip",
            md5="69ca8762b2fe404d9b9bad1103e97832",
            urls=(MENDELEY + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded",),
        ),
    ),
    locate=locate,
    plan=plan,
    decode=decode,
    notes=__doc__.split("\n\n", 1)[1].strip(),
)
