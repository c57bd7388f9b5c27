"""CIFAR10-DVS (Li et al. 2017): CIFAR-10 images on a monitor recorded by a DVS128, AEDAT 2.0.

10 classes x 1000 recordings, 128x128, no official split. Options:

* ``split``: ``first100`` (default; the first 100 recordings of each class, in file-name number
  order, are the test set: 9000/1000, the split of the TEBN paper) or ``seeded`` (a 90/10 split per
  class drawn with a fixed seed, 0, so every user gets the same one).
* ``convention``: ``jaer`` (default; jAER's DVS128 decoding, as our AEDAT 2.0 reader returns it:
  x = 127 - x_bits, y = y_bits with origin bottom-left, p = 1 - bit0) or ``spikingjelly``
  (x' = 127 - y, y' = x, i.e. SpikingJelly's x' = 127 - y_bits, y' = 127 - x_bits, same p), or
  ``raw`` (the address bit fields as stored: x = x_bits, y = y_bits, p = bit0).

Labels follow the class order below (airplane = 0 ... truck = 9).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import NeurodataError
from ..events import make_events
from .registry import DatasetSpec, Sample, Unit, batched
from .resource import Resource
from .trees import FileTree, files_by_folder, read_events

CLASSES = {
    "airplane": ("7712788", "0afd5c4bf9ae06af762a77b180354fdd"),
    "automobile": ("7712791", "8438dfeba3bc970c94962d995b1b9bdd"),
    "bird": ("7712794", "a9c207c91c55b9dc2002dc21c684d785"),
    "cat": ("7712812", "52c63c677c2b15fa5146a8daf4d56687"),
    "deer": ("7712815", "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
    "dog": ("7712818", "f379ebdf6703d16e0a690782e62639c3"),
    "frog": ("7712842", "cad6ed91214b1c7388a5f6ee56d08803"),
    "horse": ("7712851", "e7cbbf77bec584ffbf913f00e682782a"),
    "ship": ("7712836", "41c7bd7d6b251be82557c6cce9a7d5c9"),
    "truck": ("7712839", "89f3922fd147d9aeff89e76a2b0b70a7"),
}
FIGSHARE = "https://ndownloader.figshare.com/files/"
FILES_PER_UNIT = 250
TEST_PER_CLASS = 100
SEEDED_TEST_FRACTION = 0.1


def recording_number(name: str) -> int:
    """The trailing number of a file ``name`` like ``cifar10_airplane_42.aedat`` (files sort by it, not as text)."""
    match = re.search(r"(\d+)\.aedat$", name)
    return int(match.group(1)) if match else -1


def convert_convention(events: np.ndarray, convention: str) -> np.ndarray:
    """Re-express jAER-decoded DVS128 events in another published convention (see module doc)."""
    if convention == "jaer":
        return events
    x, y, p = events["x"].astype(np.int32), events["y"].astype(np.int32), events["p"]
    if convention == "spikingjelly":
        return make_events(events["t"], 127 - y, x, p)
    if convention == "raw":
        return make_events(events["t"], 127 - x, y, 1 - p)
    raise NeurodataError(f"cifar10dvs: unknown convention {convention!r}")


def class_folder(folders: dict[str, list[str]], name: str) -> str:
    """The folder called ``name`` that holds ``.aedat`` recordings, as ``"a/airplane/"`` (the
    shallowest when several do). Each published zip holds its class folder, so in a tree of the
    ten archives they sit one level down; an extracted tree has them side by side.

    Args:
        folders: The dataset's files by folder (:func:`~neurodata.datasets.trees.files_by_folder`).
        name: The class.
    """
    found = {
        folder
        for folder, files in folders.items()
        if folder.rstrip("/").rsplit("/", 1)[-1] == name and any(f.endswith(".aedat") for f in files)
    }
    if not found:
        raise NeurodataError(
            f"cifar10dvs: no {name}/ folder of .aedat recordings found "
            f"(expected the ten class folders: {', '.join(CLASSES)})"
        )
    return min(found, key=lambda folder: (folder.count("/"), folder))


def locate(tree: FileTree) -> str:
    """Check that all ten class folders are in ``tree``; its root (the spec's ``locate``)."""
    folders = files_by_folder(tree)
    for name in CLASSES:
        class_folder(folders, name)  # all ten must be there
    return ""


def plan(tree: FileTree, base: str, options: dict) -> list[Unit]:
    """Units of up to 250 recordings of one class and split of ``tree`` (the spec's ``plan``; ``base``
    is the root).

    ``options["split"]`` picks the test set: "first100" (the first 100 recordings of each class by
    number) or a seeded random 10 %.
    """
    rng = np.random.default_rng(0)
    folders = files_by_folder(tree)
    units = []
    for label, name in enumerate(CLASSES):
        in_folder = folders[class_folder(folders, name)]
        files = sorted((f for f in in_folder if f.endswith(".aedat")), key=recording_number)
        if options["split"] == "first100":
            test = set(files[:TEST_PER_CLASS])
        else:
            picks = rng.permutation(len(files))[: round(SEEDED_TEST_FRACTION * len(files))]
            test = {files[i] for i in picks}
        for split in ("train", "test"):
            chosen = [f for f in files if (f in test) == (split == "test")]
            for i, group in enumerate(batched(chosen, FILES_PER_UNIT)):
                units.append(Unit(split, f"{name}-{split}-{i:02d}", tuple(group), (("label", label),)))
    return units


def decode(tree: FileTree, unit: Unit, options: dict) -> list[Sample]:
    """The recordings of ``unit`` in ``tree``, in ``options["convention"]`` (the spec's ``decode``)."""
    label = dict(unit.params)["label"]
    return [
        Sample(convert_convention(read_events(tree, name, "aedat2"), options["convention"]), label, name)
        for name in unit.files
    ]


SPEC = DatasetSpec(
    name="cifar10dvs",
    title="CIFAR10-DVS",
    rules_version="1",
    sensor_size=(128, 128, 2),
    class_names=tuple(CLASSES),
    resources=tuple(
        Resource(f"{name}.zip", md5=md5, urls=(FIGSHARE + fid,)) for name, (fid, md5) in CLASSES.items()
    ),
    locate=locate,
    plan=plan,
    decode=decode,
    options={"split": ("first100", "seeded"), "convention": ("jaer", "spikingjelly", "raw")},
    notes=__doc__.split("\n\n", 1)[1].strip(),
    decodes=("aedat2",),
)
