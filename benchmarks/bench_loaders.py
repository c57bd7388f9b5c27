"""Loader throughput on DVS128-sized samples: neurodata.load against SpikingJelly's and Tonic's on-disk caches.

Data: the EVT 2.0 and EVT 3.0 fixture recordings, downscaled to a 128x128 sensor (x * 128 // width),
tiled end to end with increasing time offsets and cut into samples of 100-300 k events (DVS128
Gesture's range). The same samples are written as

* a neurodata cache with the default codec, zstd (plus frames precomputed in it with
  ``neurodata.loaders.precompute``), one with ``codec="lz4"`` (faster to read, ~20 % larger), and
  one with ``align_samples=False`` (samples back to back as cache layout 1 stored them, so a
  sample's first and last chunk also hold its neighbours' events),
* SpikingJelly's folders: ``events_np/<label>/<i>.npz`` (``np.savez_compressed`` of int64 t, x, y, p,
  SpikingJelly's default) and ``frames_number_16_split_by_number/<label>/<i>.npz`` (float64 frames,
  as ``integrate_events_by_fixed_frames_number`` makes them), read as SpikingJelly reads them
  (``np.load`` into a dict; ``load_npz_frames``: ``np.load(...)["frames"].astype(np.float32)``),
  written here because ``spikingjelly.datasets`` does not import without torchvision,
* Tonic's ``DiskCachedDataset`` (one HDF5 file per sample, lzf), filled by one pass before timing.

Frames are T = 16 frames split by event count (SpikingJelly's ``frames_number=16, split_by="number"``;
ours: ``ToFrame(None, frames_number=16, split_by="number")``, int32, and the same with
``dtype="int16"``, Tonic's frame dtype; Tonic: ``ToFrame(n_event_bins=16)``).
Each timed pass reads every sample (map-style datasets in one fixed random order) through a
``DataLoader`` in four modes: 0 workers one sample at a time without collation (pure loading),
then batches of 16 with 0 workers, 2 fresh workers (fork, started anew each pass as PyTorch does
by default) and 2 persistent workers (after an untimed first pass), through the same collate for all: ``pad_events`` for
events (it accepts SpikingJelly's dicts and Tonic's arrays; our map dataset hands it the batch's
samples still in the cache, which it decodes straight into the padded batch), ``stack_dense`` for
frames. With 0 workers our reads decode chunks (one sample) or samples (a batch) on
``torch.get_num_threads()`` threads (2 here), so the CPU time per sample is printed beside the wall rate,
every row states the threads each side decodes on (``threads``: the peers read on the calling
thread; with workers every loader decodes on one thread per worker process), and the ``1 decode
thread`` rows time ours on one thread (``$NEURODATA_DECODE_THREADS=1`` during their passes): the
same-threads comparison. Runs interleave the loaders, each repeat starting with another one;
medians of ``--repeats``.

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_loaders.py [--samples 160] [--repeats 3] [--groups events]
    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_loaders.py --samples 1176 --groups events \
        --modes "2 workers, batches of 16" "2 persistent workers, b16"   # a DVS128 Gesture train epoch
    PYTHONPATH=. /work/venv/bin/python benchmarks/bench_loaders.py --remote   # s3:// on moto vs local
    PYTHONPATH=. /work/venv/bin/python benchmarks/bench_loaders.py --remote --latency-ms 20 --groups events

``--remote`` needs s3fs and moto[server] (in /work/venv, not in the benchmark env). moto answers on
loopback at once; ``--latency-ms`` delays every S3 request by that much before it is sent, as a
network round trip would (concurrent requests wait side by side), so request rounds cost what they
cost against a real object store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from neurodata.cache import CacheBuilder, PartData, build_cache, open_cache
from neurodata.events import make_events
from neurodata.loaders import load, pad_events, stack_dense
from neurodata.loaders.decode_pool import THREADS_VARIABLE
from neurodata.loaders.precompute import precompute

FIXTURES = Path(
    os.environ.get("NEURODATA_FIXTURES", Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures")
)
SENSOR = (128, 128, 2)
SAMPLE_EVENTS = (100_000, 300_000)
PER_PART = 16
_STREAM: list[
    np.ndarray
] = []  # per process: the tiled stream and the sample boundaries (forked into builders)


def downscaled_recordings() -> list[np.ndarray]:
    import expelliarmus

    evt2 = expelliarmus.Wizard(encoding="evt2").read(str(FIXTURES / "evt2" / "evt2_sample.raw"))
    evt3 = np.load(FIXTURES / "evt3" / "evt3_sample.npy", allow_pickle=False)
    out = []
    for rec, (width, height) in ((evt2, (640, 480)), (evt3, (1280, 720))):
        x = rec["x"].astype(np.int64) * SENSOR[0] // width
        y = rec["y"].astype(np.int64) * SENSOR[1] // height
        out.append(make_events(rec["t"], x, y, rec["p"]))
    return out


def prepare_stream(n_samples: int) -> None:
    """The tiled stream and sample bounds, in this process (forked cache builders inherit them)."""
    sizes = np.random.default_rng(0).integers(*SAMPLE_EVENTS, n_samples)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    recordings, pieces, total, clock, k = downscaled_recordings(), [], 0, 0, 0
    while total < bounds[-1]:
        rec = recordings[k % len(recordings)].copy()
        rec["t"] += clock - rec["t"][0]
        clock = int(rec["t"][-1]) + 1000
        pieces.append(rec)
        total += len(rec)
        k += 1
    _STREAM[:] = [np.concatenate(pieces)[: bounds[-1]], bounds]


def make_part(n_samples: int, split: str, index: int) -> PartData:
    stream, bounds = _STREAM
    ids = range(index * PER_PART, min(n_samples, (index + 1) * PER_PART))
    return PartData.from_samples((stream[bounds[i] : bounds[i + 1]], i % 11, f"sample{i}") for i in ids)


def frame_spec(dtype: str = "int32"):
    from neurodata.transforms import ToFrame

    return ToFrame(None, frames_number=16, split_by="number", dtype=dtype)


# ---- peers --------------------------------------------------------------------------------------
def sj_load_events(path: str) -> dict:
    """SpikingJelly's ``_load_events`` (datasets/base.py)."""
    events = np.load(path, allow_pickle=False)  # numpy's default, as SpikingJelly calls it
    with events:
        return {key: events[key] for key in events.files}


def sj_load_frames(path: str) -> np.ndarray:
    """SpikingJelly's ``load_npz_frames`` (datasets/utils.py)."""
    with np.load(path, allow_pickle=False) as frames_file:
        return frames_file["frames"].astype(np.float32)


class FolderDataset(Dataset):
    """SpikingJelly's DatasetFolder access pattern: a list of (path, label), a loader per file."""

    def __init__(self, samples: list[tuple[str, int]], loader: Callable):
        self.samples, self.loader = samples, loader

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return self.loader(path), label


class CacheSource(Dataset):
    """Our cache's samples, as Tonic dataset items (structured events, optionally a Tonic transform)."""

    def __init__(self, url: str, transform: Callable | None = None):
        self.url, self.transform = url, transform

    def __len__(self) -> int:
        return len(open_cache(self.url)["train"])

    def __getitem__(self, i: int):
        events, label = open_cache(self.url)["train"][i]
        return (self.transform(events) if self.transform else events), label


def write_spikingjelly(url: str, root: Path) -> tuple[list, list]:
    split = open_cache(url)["train"]
    events_list, frames_list = [], []
    from neurodata.transforms import ToFrame

    frame = ToFrame(SENSOR, frames_number=16, split_by="number")
    for i in range(len(split)):
        events, label = split[i]
        for kind in ("events_np", "frames_number_16_split_by_number"):
            (root / kind / str(label)).mkdir(parents=True, exist_ok=True)
        path = root / "events_np" / str(label) / f"{i}.npz"
        np.savez_compressed(path, **{k: events[k].astype(np.int64) for k in "txyp"})
        events_list.append((str(path), label))
        path = root / "frames_number_16_split_by_number" / str(label) / f"{i}.npz"
        np.savez_compressed(path, frames=frame(events).astype(np.float64))
        frames_list.append((str(path), label))
    return events_list, frames_list


def tonic_cached(url: str, folder: Path, frames: bool):
    import tonic
    from tonic import DiskCachedDataset

    transform = tonic.transforms.ToFrame(sensor_size=SENSOR, n_event_bins=16) if frames else None
    ds = DiskCachedDataset(CacheSource(url, transform), cache_path=str(folder))
    for i in range(len(ds)):  # fill the cache (not timed)
        ds[i]
    return ds


# ---- timing -------------------------------------------------------------------------------------
MODES = (  # name, workers, batch size, persistent workers
    ("0 workers, per sample", 0, None, False),
    ("0 workers, batches of 16", 0, 16, False),
    ("2 workers, batches of 16", 2, 16, False),
    ("2 persistent workers, b16", 2, 16, True),
)


def keep(sample):
    return sample


class Case(NamedTuple):
    """One loader of a table: its dataset, whether it is map-style, its collate function, and the
    decode threads ours may use with 0 workers (None: ``torch.get_num_threads()``)."""

    dataset: Any
    map_style: bool
    collate: Callable
    decode_threads: int | None = None


PEERS = ("SpikingJelly", "Tonic")  # case names of the peers' loaders: they decode on the calling thread


@contextmanager
def decode_threads_set(threads: int | None) -> Iterator[None]:
    """``$NEURODATA_DECODE_THREADS`` set to ``threads`` for the block (None: left as it is)."""
    if threads is None:
        yield
        return
    before = os.environ.get(THREADS_VARIABLE)
    os.environ[THREADS_VARIABLE] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ[THREADS_VARIABLE]
        else:
            os.environ[THREADS_VARIABLE] = before


def threads_label(name: str, case: Case, workers: int) -> str:
    """The threads a row's loader decodes on: ``N`` in this process, or ``W proc x 1``."""
    if workers:
        return f"{workers} proc x 1"
    if name.startswith(PEERS):
        return "1"
    limit = case.decode_threads or os.environ.get(THREADS_VARIABLE, "").strip()
    return str(int(limit) if limit else torch.get_num_threads())


def make_loader(
    dataset, order: list[int] | None, workers: int, batch: int | None, collate: Callable, persistent: bool
) -> DataLoader:
    """``batch`` None: samples one by one, no collate (pure loading); else batches through ``collate``."""
    kwargs = {"multiprocessing_context": "fork", "persistent_workers": persistent} if workers else {}
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=order,
        num_workers=workers,
        collate_fn=collate if batch else keep,
        **kwargs,
    )


def one_pass(loader: DataLoader) -> tuple[float, float, int]:
    """Wall seconds and this process's CPU seconds to read every sample through ``loader``, and the
    number of samples."""
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    for item in loader:
        n += len(item[-1]) if loader.batch_size else 1
    return time.perf_counter() - start, time.process_time() - cpu, n


def run_table(cases: dict[str, dict], n_samples: int, repeats: int, modes: list[str] | None = None) -> None:
    """cases: group -> {name: (dataset, map_style, collate)}; the group's first entry is the ratios' reference.

    With 0 workers everything runs in this process, so its CPU time per sample is printed too: on a
    shared machine it moves less with other tenants' load than wall time (with workers: ``-``).
    Each repeat rotates the order of the cases, so that no case always runs first.
    """
    order = np.random.default_rng(1).permutation(n_samples).tolist()
    print(
        f"\n{'case':<42} {'mode':<26} {'threads':>11} {'samples/s':>10} {'ours / this':>12} {'cpu ms/sample':>14}"
    )
    for group, loaders in cases.items():
        loaders = {name: Case(*case) for name, case in loaders.items()}
        for mode, workers, batch, persistent in MODES:
            if modes is not None and mode not in modes:
                continue
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in loaders}
            made = {
                name: make_loader(
                    case.dataset, order if case.map_style else None, workers, batch, case.collate, persistent
                )
                for name, case in loaders.items()
            }
            if persistent:  # steady state: the workers start (and warm up) in an untimed first pass
                for loader in made.values():
                    one_pass(loader)
            names = list(made)
            for repeat in range(repeats):
                # each repeat starts with another case: the first pass after the others' runs slower
                # (swapping the first two event rows moved each by 10-15 %)
                for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                    loader = made[name]
                    with decode_threads_set(loaders[name].decode_threads):
                        seconds, cpu, n = one_pass(loader)
                    assert n == n_samples, f"{name}: {n} samples, expected {n_samples}"
                    times[name].append((seconds, cpu))
            del made  # persistent workers exit
            medians = {name: statistics.median(s for s, _ in t) for name, t in times.items()}
            ours = medians[next(iter(loaders))]
            for name, t in medians.items():
                cpu = (
                    f"{statistics.median(c for _, c in times[name]) / n_samples * 1e3:.2f}"
                    if not workers
                    else "-"
                )
                threads = threads_label(name, loaders[name], workers)
                print(
                    f"{group + ': ' + name:<42} {mode:<26} {threads:>11} {n_samples / t:>10.1f} {t / ours:>11.2f}x"
                    f" {cpu:>14}",
                    flush=True,
                )


def main_local(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_loaders_", dir=args.tmp))
    url = str(work / "bench.zarr")
    t0 = time.perf_counter()
    prepare_stream(args.samples)
    builder = CacheBuilder(
        url, "bench", {"sensor_size": list(SENSOR)}, {"train": -(-args.samples // PER_PART)}
    )
    build_cache(builder, partial(make_part, args.samples), workers=2)
    print(
        f"cache: {args.samples} samples, {int(_STREAM[1][-1]):,} events, built in {time.perf_counter() - t0:.1f} s"
    )
    variants = {"lz4": {"codec": "lz4"}, "back-to-back": {"align_samples": False}}
    for variant, options in variants.items():
        builder = CacheBuilder(
            str(work / f"bench-{variant}.zarr"),
            "bench",
            {"sensor_size": list(SENSOR)},
            {"train": -(-args.samples // PER_PART)},
            **options,
        )
        build_cache(builder, partial(make_part, args.samples), workers=2)
    t0 = time.perf_counter()
    precompute(url, frame_spec(), workers=2, progress=False)
    print(f"precomputed frames in {time.perf_counter() - t0:.1f} s")
    precompute(url, frame_spec("int16"), workers=2, progress=False)
    sj_events, sj_frames = write_spikingjelly(url, work / "sj")
    tonic_events = tonic_cached(url, work / "tonic_events", frames=False)
    tonic_frames = tonic_cached(url, work / "tonic_frames", frames=True)
    _STREAM.clear()

    ours_events = load(url)
    ours_stream = load(url, streaming=True, seed=0)
    ours_pre = load(url, representation=frame_spec())
    ours_fly = load(url, representation=frame_spec(), precomputed=False)
    ours_pre16 = load(url, representation=frame_spec("int16"))
    assert ours_pre.precomputed and ours_pre16.precomputed and not ours_fly.precomputed
    check_same(ours_events, ours_pre, ours_fly, sj_events, sj_frames, tonic_events)
    assert all(np.array_equal(ours_pre16[i][0], ours_pre[i][0]) for i in (0, args.samples // 2))
    cases = {
        "events": {
            "neurodata map": (ours_events, True, pad_events),
            "neurodata map, 1 decode thread": (ours_events, True, pad_events, 1),
            "neurodata map, lz4 cache": (load(str(work / "bench-lz4.zarr")), True, pad_events),
            "neurodata map, back-to-back layout": (
                load(str(work / "bench-back-to-back.zarr")),
                True,
                pad_events,
            ),
            "neurodata streaming": (ours_stream, False, pad_events),
            "SpikingJelly events_np": (FolderDataset(sj_events, sj_load_events), True, pad_events),
            "Tonic DiskCachedDataset": (tonic_events, True, pad_events),
        },
        "frames T=16": {
            # stored frames are read on the calling thread (no decode threads): 1, as the peers
            "neurodata precomputed": (ours_pre, True, stack_dense, 1),
            "neurodata precomputed int16": (ours_pre16, True, stack_dense, 1),
            "neurodata on the fly": (ours_fly, True, stack_dense),
            "SpikingJelly frames npz": (FolderDataset(sj_frames, sj_load_frames), True, stack_dense),
            "Tonic DiskCachedDataset": (tonic_frames, True, stack_dense),
        },
    }
    try:
        run_table({group: cases[group] for group in args.groups}, args.samples, args.repeats, args.modes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_same(ours_events, ours_pre, ours_fly, sj_events, sj_frames, tonic_events) -> None:
    """All loaders deliver the same samples (spot checks)."""
    for i in (0, len(ours_events) // 2):
        events, label = ours_events[i]
        sj = sj_load_events(sj_events[i][0])
        assert all(np.array_equal(events[k], sj[k]) for k in "txyp") and sj_events[i][1] == label
        tonic_data, tonic_label = tonic_events[i]
        assert all(np.array_equal(events[k], tonic_data[k]) for k in "txyp") and tonic_label == label
        frames = ours_pre[i][0]
        assert np.array_equal(frames, ours_fly[i][0]) and np.array_equal(
            frames, sj_load_frames(sj_frames[i][0])
        )


def moto_server() -> tuple[subprocess.Popen, dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return server, options


def add_latency(seconds: float) -> None:
    """Every S3 request of this process (and of workers forked from it) waits ``seconds`` first."""
    import asyncio

    import s3fs

    call = s3fs.S3FileSystem._call_s3

    async def delayed(self, *args, **kwargs):
        await asyncio.sleep(seconds)
        return await call(self, *args, **kwargs)

    s3fs.S3FileSystem._call_s3 = delayed


def main_remote(args) -> None:
    import boto3
    import s3fs

    work = Path(tempfile.mkdtemp(prefix="bench_loaders_remote_", dir=args.tmp))
    url = str(work / "bench.zarr")
    prepare_stream(args.samples)
    builder = CacheBuilder(
        url, "bench", {"sensor_size": list(SENSOR)}, {"train": -(-args.samples // PER_PART)}
    )
    build_cache(builder, partial(make_part, args.samples), workers=2)
    precompute(url, frame_spec(), workers=2, progress=False)
    _STREAM.clear()
    server, options = moto_server()
    try:
        credentials = {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region_name": "us-east-1",
        }
        endpoint = options["client_kwargs"]["endpoint_url"]
        boto3.client("s3", endpoint_url=endpoint, **credentials).create_bucket(Bucket="caches")
        fs = s3fs.S3FileSystem(**options)
        fs.put(url, "caches/bench.zarr", recursive=True)
        remote = "s3://caches/bench.zarr"
        frames = frame_spec()
        cases = {
            "events": {
                "local map-style": (load(url), True, pad_events),
                "local streaming": (load(url, streaming=True), False, pad_events),
                "s3 streaming": (load(remote, storage_options=options), False, pad_events),
                "s3 streaming, no read-ahead": (
                    load(remote, storage_options=options, prefetch=0),
                    False,
                    pad_events,
                ),
                "s3 map-style": (load(remote, storage_options=options, streaming=False), True, pad_events),
            },
            "precomputed frames T=16": {
                "local map-style": (load(url, representation=frames), True, stack_dense),
                "s3 streaming": (
                    load(remote, storage_options=options, representation=frames),
                    False,
                    stack_dense,
                ),
            },
        }
        if args.latency_ms:
            add_latency(args.latency_ms / 1000)
        chosen = {group: c for group, c in cases.items() if group.endswith(tuple(args.groups))}
        run_table(chosen, args.samples, args.repeats, args.modes)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--groups", nargs="+", default=["events", "frames T=16"], help="local case groups to time"
    )
    parser.add_argument("--remote", action="store_true", help="s3:// (moto on loopback) against local")
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="--remote: delay every S3 request by this much"
    )
    parser.add_argument("--tmp", default=None, help="folder for the caches (default: the system temp)")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=[name for name, *_ in MODES],
        choices=[name for name, *_ in MODES],
        metavar="MODE",
        help="DataLoader modes to time (default: all four), e.g. '2 workers, batches of 16'",
    )
    args = parser.parse_args()
    (main_remote if args.remote else main_local)(args)
