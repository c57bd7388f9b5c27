"""Download, re-check and extraction speed of neurodata.datasets against Tonic's download_utils.

Run:  cd <repo> && PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_download.py [--mib 64] [--repeats 5]

The file is served by tests/httpserver.py in a separate process on 127.0.0.1 (no internet needed).
Ours and Tonic's runs are interleaved; the table shows medians and the ratio (Tonic time / ours).
Every task runs on one thread on both sides (our md5 and sha256 share one read of the file, on the
calling thread; Tonic computes md5). The second call is timed twice: as each library does it by
default (ours trusts a size+mtime sidecar written by the first call, Tonic re-hashes the file), and
like for like (ours with ``reverify=True``: both read and hash the whole file).
Also checks what each does with an archive member named ``../escaped.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from functools import partial
from pathlib import Path

from neurodata.datasets.download import download
from neurodata.datasets.extract import extract
from neurodata.datasets.members import UnsafeArchiveError
from neurodata.datasets.resource import Resource

SERVE = """
import sys, time
from tests.httpserver import FileServer
with FileServer(lifetime=600) as server:
    server.add("/data.bin", open(sys.argv[1], "rb").read())
    print(server.url("/data.bin"), flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
"""


def timed(fn) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        fn()
    return time.perf_counter() - start


def interleaved(k: int, ours, theirs) -> tuple[float, float]:
    """Time both, alternating which goes first so caches and load favour neither."""
    if k % 2:
        t_theirs = timed(theirs)
        return timed(ours), t_theirs
    t_ours = timed(ours)
    return t_ours, timed(theirs)


def make_small_files_tar(path: Path, count: int, size: int) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for i in range(count):
            data = os.urandom(size)
            info = tarfile.TarInfo(f"dataset/class{i % 10}/sample{i:05d}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from tonic.download_utils import download_url, extract_archive

    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    payload = os.urandom(args.mib << 20)
    source = work / "source.bin"
    source.write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(source)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    url = server.stdout.readline().strip()
    resource = Resource("data.bin", len(payload), md5, urls=(url,))
    rows: dict[str, tuple[list[float], list[float]]] = {}

    def record(name: str, ours: float, theirs: float) -> None:
        rows.setdefault(name, ([], []))
        rows[name][0].append(ours)
        rows[name][1].append(theirs)

    archive = work / "small-files.tar.gz"
    make_small_files_tar(archive, 2000, 4096)
    try:
        for k in range(args.repeats):
            ours = partial(download, resource, work / f"ours{k}", progress=False)
            tonic = partial(download_url, url, str(work / f"tonic{k}"), "data.bin", md5)
            record(f"download {args.mib} MiB over HTTP + verify", *interleaved(k, ours, tonic))
            record("call again: ours trusts sidecar, Tonic re-hashes", *interleaved(k, ours, tonic))
            ours = partial(download, resource, work / f"ours{k}", progress=False, reverify=True)
            record("call again: both re-hash (like for like)", *interleaved(k, ours, tonic))
            ours = partial(extract, archive, work / f"ours-x{k}", progress=False)
            tonic = partial(extract_archive, str(archive), str(work / f"tonic-x{k}"))
            record("extract tar.gz, 2000 x 4 KiB files", *interleaved(k, ours, tonic))
    finally:
        server.stdin.close()
        server.wait(timeout=10)

    print(f"{'task':50} {'threads ours/tonic':>18} {'ours (s)':>10} {'tonic (s)':>10} {'tonic/ours':>11}")
    for name, (ours, theirs) in rows.items():
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"{name:50} {'1 / 1':>18} {o:10.4f} {t:10.4f} {t / o:10.1f}x")
    print(f"({args.repeats} interleaved repeats, medians; {sys.version.split()[0]}, {os.cpu_count()} CPUs)")

    evil = work / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"owned"))
    (work / "tonic-evil").mkdir()
    with contextlib.suppress(Exception):
        extract_archive(str(evil), str(work / "tonic-evil"))
    print(f"tonic extract_archive wrote ../escaped.txt outside its folder: {(work / 'escaped.txt').exists()}")
    (work / "escaped.txt").unlink(missing_ok=True)
    try:
        extract(evil, work / "ours-evil", progress=False)
        print("neurodata extract: extracted it (BUG)")
    except UnsafeArchiveError as exc:
        print(
            f"neurodata extract: refused ({exc.reason}); escaped.txt exists: {(work / 'escaped.txt').exists()}"
        )
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
