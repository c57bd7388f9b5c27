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


def locate(root: Path) -> Path:
    for candidate in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if all(any((candidate / name).glob("[0-9]")) for name in SPLIT_FOLDERS.values()):
            return candidate
    raise NeurodataError(f"nmnist: no Train/ and Test/ digit folders found under {root}")


def plan(folder: Path, options: dict) -> list[Unit]:
    units = []
    for split, name in SPLIT_FOLDERS.items():
        for digit in range(10):
            files = sorted(
                p.relative_to(folder).as_posix() for p in (folder / name / str(digit)).glob("*.bin")
            )
            for i, group in enumerate(batched(files, FILES_PER_UNIT)):
                units.append(Unit(split, f"{name}-{digit}-{i:03d}", tuple(group), (("label", digit),)))
    return units


def decode(folder: Path, unit: Unit, options: dict) -> list[Sample]:
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
