"""Capture SpikingJelly's frame integration as test expectations (run in the benchmark env).

    cd <repo> && PYTHONPATH=. <peer env>/bin/python tests/data/capture_spikingjelly.py

Writes tests/data/spikingjelly_expected.npz from the N-MNIST fixture (read with neurodata, not
stored here): ``integrate_events_by_fixed_frames_number`` for split_by 'number' and 'time' and
``integrate_events_by_fixed_duration``, cast to int32 (SpikingJelly returns float64 counts).

SpikingJelly's ``datasets`` package imports torchvision at import time, which the benchmark env
lacks (no torchvision build matches its torch). The frame functions do not use it, so this script
loads ``spikingjelly/datasets/utils.py`` itself with ``datasets/__init__`` bypassed and an empty
``torchvision.transforms`` stand-in: the code under test is SpikingJelly's own, unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import spikingjelly

import neurodata as nd


def load_spikingjelly_utils():
    """Import ``spikingjelly.datasets.utils`` without running ``spikingjelly/datasets/__init__.py``."""
    if importlib.util.find_spec("torchvision") is None:
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        sys.modules.update({"torchvision": stub, "torchvision.transforms": stub.transforms})
    package = types.ModuleType("spikingjelly.datasets")
    package.__path__ = [str(Path(spikingjelly.__file__).parent / "datasets")]
    sys.modules["spikingjelly.datasets"] = package
    return importlib.import_module("spikingjelly.datasets.utils")


sj = load_spikingjelly_utils()

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "nmnist" / "sample_nmnist.bin"


def main() -> None:
    fixture = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE
    events = nd.read(fixture)
    columns = {name: events[name].astype(np.int64) for name in "txyp"}
    out = {}
    for split_by in ("number", "time"):
        for frames in (1, 7, 8, 10, 16):  # 8 and 16: flooring the frame length differs from rounding up
            frames_out = sj.integrate_events_by_fixed_frames_number(columns, split_by, frames, 34, 34)
            out[f"frames_number/{split_by}/{frames}"] = frames_out.astype(np.int32)
    for duration in (10000, 50000):
        out[f"duration/{duration}"] = sj.integrate_events_by_fixed_duration(columns, duration, 34, 34).astype(
            np.int32
        )
    target = HERE / "spikingjelly_expected.npz"
    np.savez_compressed(target, **out)
    print(f"wrote {target} ({len(out)} arrays)")


if __name__ == "__main__":
    main()
