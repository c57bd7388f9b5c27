"""``prepare dvs128`` end to end against SpikingJelly's and Tonic's DVS128 Gesture preprocessing.

Data: a DVS128-Gesture-layout archive written by :func:`neurodata.sim.gestures.write_archive`
(its ``"people"`` scene: simulated DVS pixels watching arms, hands and fingers in front of a
swaying body, with hot pixels and shot noise; AEDAT 3.1 trials, ``*_labels.csv``, the train/test
lists), 10 users x 3 lightings (the real one has 29 users; fewer keep the archive at hundreds of
MB at realistic event rates), generated once into ``$NEURODATA_BENCH_DIR`` (default
``/tmp/neurodata-bench``) and extracted there; later runs reuse it. All three sides start from the
same extracted ``DvsGesture/`` folder (extraction is the same ``tar`` for everyone), except the
rows "from the .tar.gz", which include reading the archive (the peers' times do not include extracting it). The event rate
of the labelled samples is printed beside the table, to judge the data against real recordings.

- ours: ``neurodata prepare dvs128 --source`` the ``.tar.gz`` itself (what a user runs: the archive
  hashed, its members decoded in place, no extracted tree), with 1 and 2 workers; and from the
  extracted folder, as the peers start (decode every trial, cut the labelled samples, write parts,
  commit the sharded Zarr cache).
- SpikingJelly: ``DVS128Gesture.create_raw_from_extracted`` (its ``events_np`` tree: one
  ``np.savez_compressed`` file per sample, per-event Python AEDAT decoding in a thread pool), the
  installed module itself, imported with a stand-in for the ``torchvision`` helpers it imports but
  this step never calls.
- Tonic 1.7: its ``DVSGesture`` never reads the original archive (it downloads a preprocessed copy
  of per-sample ``.npy`` files in milliseconds). The closest Tonic pipeline from the original trials
  is its own IBM-gesture AEDAT reader (``tonic.io.read_dvs_ibm``'s steps; that function itself
  crashes unpacking a 3-tuple into two names) cut by the label rows, cached by
  ``DiskCachedDataset`` (one lzf-compressed HDF5 file per sample); timed in this process (Tonic
  imported beforehand) and, as ours is, in a fresh process that imports it.

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_prepare.py [--users 10] [--gesture-s 3] [--repeats 3]

events/s counts the events in the cached samples (identical on all three sides: each keeps every
label row) over the wall time; bytes/event is what the cache occupies on disk per cached event.
Runs are interleaved (ours 1 worker, ours 2 workers, peers) and medians reported: the machine is shared.
The ``processes x threads`` column states what each side runs on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import types
from pathlib import Path

import numpy as np

BENCH_DIR = Path(os.environ.get("NEURODATA_BENCH_DIR", "/tmp/neurodata-bench"))
REPO = Path(__file__).resolve().parents[1]
TONIC_FRESH = "Tonic 1.7, the same in a fresh process (import tonic timed)"


def dataset_folder(users: int, gesture_s: float, scene: str) -> Path:
    """The extracted ``DvsGesture`` folder of the synthetic archive (generated and extracted once)."""
    from neurodata.sim.gestures import write_archive

    name = f"dvsgesture-synth-{scene}-u{users}-g{gesture_s:g}"
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
            workers=min(2, os.cpu_count() or 1),
            scene=scene,
        )
    if not (extracted / "DvsGesture" / "trials_to_train.txt").exists():
        tmp = extracted.with_name(extracted.name + ".extracting")
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(extracted, ignore_errors=True)
        os.rename(tmp, extracted)
    return extracted / "DvsGesture"


def sample_rates(folder: Path) -> np.ndarray:
    """Events per second of every labelled sample (events in the label window over its length)."""
    import neurodata

    rates = []
    for aedat in sorted(folder.glob("*.aedat")):
        t = neurodata.read(aedat)["t"]
        rows = np.loadtxt(
            aedat.with_name(aedat.stem + "_labels.csv"), np.int64, delimiter=",", skiprows=1, ndmin=2
        )
        counts = np.searchsorted(t, rows[:, 2]) - np.searchsorted(t, rows[:, 1])
        rates.append(counts / ((rows[:, 2] - rows[:, 1]) / 1e6))
    return np.concatenate(rates)


# ---- the three pipelines; each returns (seconds, events cached, bytes on disk) ----------------------


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_ours(folder: Path, out: Path, workers: int, codec: str) -> tuple[float, int, int]:
    from neurodata.datasets.prepare import prepare

    start = time.perf_counter()
    summary = prepare("dvs128", source=str(folder), root=out, workers=workers, progress=False, codec=codec)
    seconds = time.perf_counter() - start
    return seconds, summary["n_events"], tree_bytes(out / "dvs128.zarr")


def import_spikingjelly_dvs128():
    """SpikingJelly's ``dvs128_gesture`` module as installed, loaded without its package ``__init__``
    (which imports every dataset, torchaudio included). It imports torchvision, which is not installed
    beside our torch; the helpers it takes from it (archive extraction, download, integrity check,
    the ``DatasetFolder`` base class) are not used by the preprocessing step, so stand-ins are
    registered in their place. The preprocessing code itself runs unchanged."""
    try:
        import torchvision  # noqa: F401
    except ImportError:

        def unavailable(*args, **kwargs):
            raise RuntimeError("torchvision stand-in: not used by the preprocessing benchmark")

        tv = types.ModuleType("torchvision")
        tv_datasets = types.ModuleType("torchvision.datasets")
        tv_utils = types.ModuleType("torchvision.datasets.utils")
        tv_transforms = types.ModuleType("torchvision.transforms")
        tv_utils.extract_archive = tv_utils.download_url = tv_utils.check_integrity = unavailable
        tv_datasets.DatasetFolder = type("DatasetFolder", (), {})
        tv_datasets.utils = tv_utils
        tv.datasets, tv.transforms = tv_datasets, tv_transforms
        sys.modules.update(
            {
                "torchvision": tv,
                "torchvision.datasets": tv_datasets,
                "torchvision.datasets.utils": tv_utils,
                "torchvision.transforms": tv_transforms,
            }
        )
    if "spikingjelly.datasets" not in sys.modules:  # skip the package __init__ (it imports torchaudio too)
        import spikingjelly

        package = types.ModuleType("spikingjelly.datasets")
        package.__path__ = [str(Path(spikingjelly.__file__).parent / "datasets")]
        sys.modules["spikingjelly.datasets"] = package
    return importlib.import_module("spikingjelly.datasets.dvs128_gesture")


def run_spikingjelly(folder: Path, out: Path) -> tuple[float, int, int]:
    """``DVS128Gesture.create_raw_from_extracted(extract_root, events_np/)``: what its constructor runs
    after extraction (its ``events_np`` tree; the default thread pool and compressed .npz files)."""
    dvs128_gesture = import_spikingjelly_dvs128()
    raw = out / "events_np"
    raw.mkdir(parents=True)
    start = time.perf_counter()
    dvs128_gesture.DVS128Gesture.create_raw_from_extracted(folder.parent, raw)
    seconds = time.perf_counter() - start
    n_events = 0
    for f in raw.rglob("*.npz"):
        with np.load(f, allow_pickle=False) as z:
            n_events += len(z["t"])
    return seconds, n_events, tree_bytes(raw)


class TonicTrials:
    """A Tonic-style dataset over the original trials: each label row is a sample, read with Tonic's
    IBM-gesture AEDAT reader (``tonic.io.read_dvs_ibm``'s steps, with its header unpacking fixed:
    the function itself crashes) and returned as Tonic's structured events (x, y, t, p).
    Trials are decoded once and kept while their rows are served (samples are asked for in order)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.rows = []
        for listing in ("trials_to_train.txt", "trials_to_test.txt"):
            for trial in (folder / listing).read_text().split():
                labels = np.loadtxt(
                    folder / trial.replace(".aedat", "_labels.csv"),
                    dtype=np.int64,
                    delimiter=",",
                    skiprows=1,
                    ndmin=2,
                )
                self.rows += [(trial, int(c) - 1, int(s), int(e)) for c, s, e in labels]
        self.current = (None, None)

    def __len__(self) -> int:
        return len(self.rows)

    def trial(self, name: str) -> np.ndarray:
        from tonic import io

        if self.current[0] != name:
            path = str(self.folder / name)
            version, start = io.read_aedat_header_from_file(path)[:2]
            raw = io.get_aer_events_from_file(path, version, start)
            addr, t = raw["address"], raw["timeStamp"]
            x, y, p = (addr >> 17) & 0x1FFF, (addr >> 2) & 0x1FFF, (addr >> 1) & 0x1
            self.current = (name, io.make_structured_array(x, y, t, p))
        return self.current[1]

    def __getitem__(self, index: int):
        trial, label, start, end = self.rows[index]
        events = self.trial(trial)
        return events[(events["t"] >= start) & (events["t"] < end)], label


def run_tonic(folder: Path, out: Path) -> tuple[float, int, int]:
    """``DiskCachedDataset(TonicTrials(folder), cache_path)``, every sample read once (which writes it),
    in this process (Tonic already imported: its import is not timed)."""
    from tonic import DiskCachedDataset

    start = time.perf_counter()
    cached = DiskCachedDataset(TonicTrials(folder), cache_path=str(out / "tonic-cache"))
    n_events = sum(len(cached[i][0]) for i in range(len(cached)))
    seconds = time.perf_counter() - start
    return seconds, n_events, tree_bytes(out / "tonic-cache")


def run_tonic_fresh(folder: Path, out: Path) -> tuple[float, int, int]:
    """:func:`run_tonic` as a user's script runs it: a fresh Python process that imports Tonic, as
    ours is timed (the command in a fresh process)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--tonic-child", str(folder), str(out)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"the Tonic child failed:\n{result.stderr}")
    return seconds, json.loads(result.stdout)["n_events"], tree_bytes(out / "tonic-cache")


def run_ours_cli(
    folder: Path, out: Path, workers: int, codec: str | None, checkout: Path = REPO
) -> tuple[float, int, int]:
    """The command a user types, in a fresh process (imports and Numba's cached kernels load included),
    from ``checkout`` (this one, or an earlier version's source tree for a before/after comparison)."""
    command = [sys.executable, "-m", "neurodata.cli", "prepare", "dvs128", "--source", str(folder), "--root", str(out)]
    command += ["--no-verify"] if str(folder).endswith(".tar.gz") else []  # not the published archive
    command += ["--workers", str(workers), "--json"] + (["--codec", codec] if codec else [])
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    result = subprocess.run(command, capture_output=True, text=True, cwd=checkout, env=env)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"neurodata prepare failed:\n{result.stderr}")
    return seconds, json.loads(result.stdout)["n_events"], tree_bytes(out / "dvs128.zarr")


def warm_up(folder: Path, checkout: Path) -> None:
    """One untimed run on a one-trial copy, so that Numba's on-disk kernel cache of ``checkout`` is
    filled (a first call compiles; the timed runs then measure what every later run costs)."""
    small = BENCH_DIR / "warmup" / "DvsGesture"
    shutil.rmtree(small.parent, ignore_errors=True)
    small.mkdir(parents=True)
    trial = (folder / "trials_to_train.txt").read_text().split()[0]
    for name in (trial, trial.replace(".aedat", "_labels.csv")):
        (small / name).symlink_to(folder / name)
    (small / "trials_to_train.txt").write_text(trial + "\n")
    (small / "trials_to_test.txt").write_text("")
    run_ours_cli(small, small.parent / "out", 1, None, checkout)
    shutil.rmtree(small.parent)


def main() -> None:
    if sys.argv[1:2] == ["--tonic-child"]:  # run_tonic_fresh's child: import tonic, prepare, report
        seconds, n_events, _ = run_tonic(Path(sys.argv[2]), Path(sys.argv[3]))
        print(json.dumps({"n_events": n_events}))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument(
        "--scene", default="people", help="the generator's scene (neurodata.sim.gestures.SCENES)"
    )
    parser.add_argument("--gesture-s", type=float, default=3.0, help="seconds per gesture")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours and Tonic")
    parser.add_argument(
        "--sj-repeats", type=int, default=3, help="runs of SpikingJelly and of --before (minutes each; medians need 3)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="source tree of an earlier neurodata (e.g. `git archive REV | tar -x -C DIR`) to time too",
    )
    args = parser.parse_args()

    folder = dataset_folder(args.users, args.gesture_s, args.scene)
    rates = sample_rates(folder)
    aedat_bytes = sum(f.stat().st_size for f in folder.glob("*.aedat"))
    archive = BENCH_DIR / f"dvsgesture-synth-{args.scene}-u{args.users}-g{args.gesture_s:g}.tar.gz"
    sides = {
        "neurodata prepare from the .tar.gz, 1 worker": lambda out: run_ours_cli(archive, out, 1, None),
        "neurodata prepare from the .tar.gz, 2 workers": lambda out: run_ours_cli(archive, out, 2, None),
        "neurodata prepare, 1 worker (default: zstd)": lambda out: run_ours_cli(folder, out, 1, None),
        "neurodata prepare, 2 workers (zstd)": lambda out: run_ours_cli(folder, out, 2, "zstd"),
        "neurodata prepare, 1 worker (--codec lz4)": lambda out: run_ours_cli(folder, out, 1, "lz4"),
        "Tonic 1.7 reader + DiskCachedDataset": lambda out: run_tonic(folder, out),
        TONIC_FRESH: lambda out: run_tonic_fresh(folder, out),
        **(
            {
                f"before ({args.before.name}), 1 worker": lambda out: run_ours_cli(
                    folder, out, 1, None, args.before
                )
            }
            if args.before
            else {}
        ),
        "SpikingJelly create_raw_from_extracted": lambda out: run_spikingjelly(folder, out),
    }
    for checkout in [REPO] + ([args.before] if args.before else []):
        warm_up(folder, checkout)
    runs: dict[str, list[tuple[float, int, int]]] = {name: [] for name in sides}
    work = BENCH_DIR / "runs"
    for repeat in range(max(args.repeats, args.sj_repeats)):
        for name, run in sides.items():
            slow = name.startswith(("SpikingJelly", "before"))
            if repeat >= (args.sj_repeats if slow else args.repeats):
                continue
            shutil.rmtree(work, ignore_errors=True)
            runs[name].append(run(work))
            seconds, n_events, size = runs[name][-1]
            print(
                f"  {name}: {seconds:.1f} s, {n_events:,} events, {size / n_events:.2f} bytes/event",
                file=sys.stderr,
            )
    shutil.rmtree(work, ignore_errors=True)

    counts = {n for r in runs.values() for _, n, _ in r}
    if len(counts) != 1:
        raise SystemExit(f"the sides cached different numbers of events: {counts}")
    n_events = counts.pop()
    sj_rate = n_events / statistics.median(s for s, _, _ in runs["SpikingJelly create_raw_from_extracted"])
    print(
        f"\n{len(list(folder.glob('*.aedat')))} trials, {aedat_bytes / 2**20:,.0f} MiB of AEDAT 3.1, "
        f"{n_events:,} events in the labelled samples; medians of {args.repeats} runs "
        f"({args.sj_repeats} for SpikingJelly and the earlier version)"
    )
    low, median, high = np.percentile(rates, [10, 50, 90]) / 1e3
    print(
        f"event rate of the {len(rates)} labelled samples: median {median:.0f} k events/s "
        f"(10th-90th percentile {low:.0f}-{high:.0f} k)\n"
    )
    tonic_rate = n_events / statistics.median(s for s, _, _ in runs[TONIC_FRESH])
    print(
        "| pipeline | processes x threads | seconds | M events/s | x SpikingJelly | x Tonic (fresh process) "
        "| bytes/event on disk |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, results in runs.items():
        seconds = statistics.median(s for s, _, _ in results)
        size = statistics.median(b for _, _, b in results)
        rate = n_events / seconds
        print(
            f"| {name} | {parallelism(name)} | {seconds:.1f} | {rate / 1e6:.2f} | {rate / sj_rate:.1f} "
            f"| {rate / tonic_rate:.2f} | {size / n_events:.2f} |"
        )


def parallelism(name: str) -> str:
    """What a side of the table runs on: ours one decoding thread per worker process, Tonic the calling
    thread, SpikingJelly its preprocessing thread pool (its per-event Python decoding holds the GIL)."""
    if name.startswith("SpikingJelly"):
        from spikingjelly import configure

        return f"1 x {min(os.cpu_count() or 1, configure.max_threads_number_for_datasets_preprocess)}"
    if ".tar.gz" in name:  # the archive streams through the main process, ISA-L inflating on a thread of its own
        return "2 x 1 (+ inflate)" if "2 workers" in name else "1 x 1 (+ inflate)"
    return "2 x 1" if "2 workers" in name else "1 x 1"


if __name__ == "__main__":
    main()
