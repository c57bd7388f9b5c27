"""``prepare dvs128`` end to end against SpikingJelly's and Tonic's DVS128 Gesture preprocessing.

Data: a DVS128-Gesture-layout archive written by :func:`neurodata.sim.gestures.write_archive`
(simulated DVS pixels watching moving blobs: AEDAT 3.1 trials, ``*_labels.csv``, the train/test
lists), 29 users x 3 lightings like the real one, generated once into ``$NEURODATA_BENCH_DIR``
(default ``/tmp/neurodata-bench``) and extracted there; later runs reuse it. All three sides start
from the same extracted ``DvsGesture/`` folder (extraction is the same ``tar`` for everyone).

- ours: ``neurodata.datasets.prepare.prepare("dvs128", source=folder)`` with 1 and 2 workers
  (decode every trial, cut the labelled samples, write parts, commit the sharded Zarr cache).
- SpikingJelly: ``DVS128Gesture.create_raw_from_extracted`` (its ``events_np`` tree: one
  ``np.savez_compressed`` file per sample, per-event Python AEDAT decoding in a thread pool), the
  installed module itself, imported with a stand-in for the ``torchvision`` helpers it imports but
  this step never calls.
- Tonic 1.7: its ``DVSGesture`` never reads the original archive (it downloads a preprocessed copy
  of per-sample ``.npy`` files in milliseconds). The closest Tonic pipeline from the original trials
  is its own IBM-gesture AEDAT reader (``tonic.io.read_dvs_ibm``'s steps; that function itself
  crashes unpacking a 3-tuple into two names) cut by the label rows, cached by
  ``DiskCachedDataset`` (one lzf-compressed HDF5 file per sample).

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_prepare.py [--users 29] [--gesture-s 3] [--repeats 3]

events/s counts the events in the cached samples (identical on all three sides: each keeps every
label row) over the wall time; bytes/event is what the cache occupies on disk per cached event.
Runs are interleaved (ours 1 worker, ours 2 workers, peers) and medians reported: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tarfile
import time
import types
from pathlib import Path

import numpy as np

BENCH_DIR = Path(os.environ.get("NEURODATA_BENCH_DIR", "/tmp/neurodata-bench"))
AEDAT_EXTS = (".aedat",)


def dataset_folder(users: int, gesture_s: float) -> Path:
    """The extracted ``DvsGesture`` folder of the synthetic archive (generated and extracted once)."""
    from neurodata.sim.gestures import write_archive

    name = f"dvsgesture-synth-u{users}-g{gesture_s:g}"
    archive = BENCH_DIR / f"{name}.tar.gz"
    extracted = BENCH_DIR / name
    if not archive.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        print(f"generating {archive} ({users} users x 3 lightings; minutes, once)", file=sys.stderr)
        write_archive(
            archive,
            n_users=users,
            n_test_users=max(1, round(users * 6 / 29)),
            lightings=("fluorescent", "led", "natural"),
            gesture_us=int(gesture_s * 1e6),
            progress=lambda k, n: print(f"  trial {k}/{n}", file=sys.stderr) if k % 10 == 0 else None,
        )
    if not (extracted / "DvsGesture" / "trials_to_train.txt").exists():
        tmp = extracted.with_name(extracted.name + ".extracting")
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(extracted, ignore_errors=True)
        os.rename(tmp, extracted)
    return extracted / "DvsGesture"
