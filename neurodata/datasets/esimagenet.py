"""ES-ImageNet (Lin et al. 2021): ImageNet-1k converted to events by an omnidirectional-motion
algorithm; 1000 classes, ~1.26 M train and 50 k validation samples, one ``.npz`` per sample.

Distributed as 25 RAR parts (``ES-imagenet-0.18.partNN.rar``) that need an external extractor.
``trainlabel.txt`` / ``vallabel.txt`` list ``<path> <label> [<a> <b>]`` (a, b: the resized image's
height and width). Option ``geometry``: ``raw`` (default; 256x256, x = col, y = row, as
SpikingJelly reads it) or ``centred`` (the authors' loader: shifted by ((254 - a)//2, (254 - b)//2)
and cropped to 224x224). Time is the bin index 1..8 (the format has no microseconds).
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import NeurodataError
from ..formats.esimagenet import esimagenet_events
from .registry import DatasetSpec, Sample, Unit, batched
from .resource import Resource
from .trees import FileTree, find_marker, read_text

PARTS_URL = (
    "https://cloud.tsinghua.edu.cn/d/94873ab4ec2a4eb497b3/files/?p=%2FES-imagenet-0.18.part{:02d}.rar&dl=1"
)
PART_MD5 = (
    "900bdd57b5641f7d81cd4620283fef76 5982532009e863a8f4e18e793314c54b 8f408c1f5a1d4604e48d0d062a8289a0 "
    "5c5b5cf0a55954eb639964e3da510097 51feb661b4c9fa87860b63e76b914673 fcd007a2b17b7c13f338734c53f6db31 "
    "d3e74b96d9c5df15714bbc3abcd329fc 65b9cf7fa63e18d2e7d92ff45a42a5e5 241c9a37a83ff9efd305fe46d012211e "
    "ceee96971008e30d0cdc34086c49fd75 4fbfefbe6e48758fbb72427c81f119cf c8cc163be4e5f6451201dccbded4ec24 "
    "08c9dff32f6b42c49ef7cd78e37c728e 43aa157dc5bd5fcea81315a46e0322cf 480a69b050f465ef01efcc44ae29f7df "
    "11abd24d92b93e7f85acd63abd4a18ab 3891486a6862c63a325c5f16cd01fdd1 cf8bb0525b514f411bca9d7c2d681f7c "
    "3766bc35572ccacc03f0f293c571d0ae bf73a5e338644122220e41da7b5630e6 564de4a2609cbb0bb67ffa1bc51f2487 "
    "60a9e52db1acadfccc9a9809073f0b04 373b5484826d40d7ec35f0e1605cb6ea a50612e889b20f99cc7b2725dfd72e9e "
    "0802ccdeb0cff29237faf55164524101"
).split()
FILES_PER_UNIT = 5000
SPLITS = {"train": ("trainlabel.txt", "train"), "test": ("vallabel.txt", "val")}


def read_label_file(text: str, where: str) -> list[tuple[str, int, int | None, int | None]]:
    """(relative path, label, a, b) per line of a label file; a and b are None when it omits them.

    Args:
        text: The label file's content.
        where: Its name in errors.
    """
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            size = (int(fields[2]), int(fields[3])) if len(fields) >= 4 else (None, None)
            rows.append((fields[0], int(fields[1]), *size))
        except (IndexError, ValueError):
            raise NeurodataError(
                f"{where}: line {line_no}: expected '<path> <label> [<a> <b>]', got {line!r}"
            ) from None
    return rows


def locate(tree: FileTree) -> str:
    """The folder of ``tree`` holding ``trainlabel.txt`` (the spec's ``locate``)."""
    return find_marker(tree, "trainlabel.txt", "esimagenet")


def plan(tree: FileTree, base: str, options: dict) -> list[Unit]:
    """Units of consecutive samples of each split's label file in the folder ``base`` of ``tree``
    (the spec's ``plan``; no ``options``)."""
    units = []
    for split, (listing, subdir) in SPLITS.items():
        rows = read_label_file(read_text(tree, base + listing), tree.where(base + listing))
        for i, group in enumerate(batched(rows, FILES_PER_UNIT)):
            files = tuple(f"{base}{subdir}/{row[0]}" for row in group)
            params = (("rows", tuple(row[1:] for row in group)),)
            units.append(Unit(split, f"{split}-{i:04d}", files, (*params, ("base", base))))
    return units


def decode(tree: FileTree, unit: Unit, options: dict) -> list[Sample]:
    """The samples of ``unit`` in ``tree``, in the ``options["geometry"]`` convention (the spec's ``decode``)."""
    samples = []
    params = dict(unit.params)
    for name, (label, a, b) in zip(unit.files, params["rows"]):
        try:
            with np.load(io.BytesIO(tree.read_bytes(name)), allow_pickle=False) as npz:
                pos, neg = npz["pos"], npz["neg"]
        except (OSError, ValueError, KeyError) as err:
            raise NeurodataError(f"{tree.where(name)}: not a readable ES-ImageNet sample ({err})") from None
        events = esimagenet_events(pos, neg, convention=options["geometry"], a=a, b=b)
        samples.append(Sample(events, label, name[len(params["base"]) :]))
    return samples


SPEC = DatasetSpec(
    name="esimagenet",
    title="ES-ImageNet",
    rules_version="1",
    sensor_size=(256, 256, 2),
    class_names=tuple(f"class{k}" for k in range(1000)),
    resources=tuple(
        Resource(f"ES-imagenet-0.18.part{i:02d}.rar", md5=md5, urls=(PARTS_URL.format(i),))
        for i, md5 in enumerate(PART_MD5, start=1)
    ),
    locate=locate,
    plan=plan,
    decode=decode,
    options={"geometry": ("raw", "centred")},
    notes=__doc__.split("\n\n", 1)[1].strip(),
    sensor_size_for=lambda options: (224, 224, 2) if options["geometry"] == "centred" else (256, 256, 2),
)
