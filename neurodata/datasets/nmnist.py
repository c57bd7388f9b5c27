"""N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS sensor on a moving platform.

``Train.zip`` and ``Test.zip`` hold one ``.bin`` per sample in folders named by digit; 60000 train
and 10000 test samples, 34x34 pixels. Labels are the digit (0..9). Samples are ordered by digit
folder, then file name.
"""

from __future__ import annotations

from ..errors import NeurodataError
from .registry import DatasetSpec, Sample, Unit, batched
from .resource import Resource
from .trees import FileTree, files_by_folder, read_events

FILES_PER_UNIT = 2000
MENDELEY = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
DIGITS = {str(d) for d in range(10)}


def split_folder(folders: dict[str, list[str]], name: str) -> str:
    """The folder called ``name`` (Train or Test) that holds digit folders of ``.bin`` recordings,
    as ``"a/b/Train/"``; the shallowest when several do.

    Args:
        folders: The dataset's files by folder (:func:`~neurodata.datasets.trees.files_by_folder`).
        name: ``Train`` or ``Test``.
    """
    found = set()
    for folder, files in folders.items():
        parts = folder.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == name and parts[-1] in DIGITS and any(f.endswith(".bin") for f in files):
            found.add("/".join(parts[:-1]) + "/")
    if not found:
        raise NeurodataError(f"nmnist: no {name}/ folder with digit folders of .bin recordings found")
    return min(found, key=lambda folder: (folder.count("/"), folder))


def locate(tree: FileTree) -> str:
    """Check that the Train and Test folders are in ``tree``; its root (the spec's ``locate``)."""
    folders = files_by_folder(tree)
    for name in SPLIT_FOLDERS.values():
        split_folder(folders, name)  # both must be there
    return ""


def plan(tree: FileTree, base: str, options: dict) -> list[Unit]:
    """Units of one digit's recordings per split of ``tree`` (the spec's ``plan``; ``base`` is the
    root, no ``options``)."""
    folders = files_by_folder(tree)
    units = []
    for split, name in SPLIT_FOLDERS.items():
        folder = split_folder(folders, name)
        for digit in range(10):
            files = [f for f in folders.get(f"{folder}{digit}/", []) if f.endswith(".bin")]
            for i, group in enumerate(batched(files, FILES_PER_UNIT)):
                units.append(Unit(split, f"{name}-{digit}-{i:03d}", tuple(group), (("label", digit),)))
    return units


def decode(tree: FileTree, unit: Unit, options: dict) -> list[Sample]:
    """The recordings of ``unit`` in ``tree``, labelled with its digit (the spec's ``decode``; no ``options``)."""
    label = dict(unit.params)["label"]
    return [Sample(read_events(tree, name, "nmnist"), label, name) for name in unit.files]


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
    decodes=("nmnist",),
)
