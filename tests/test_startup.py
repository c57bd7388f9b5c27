"""Start-up: what ``neurodata --help`` and ``import snn`` import (the heavy modules they must not).

Times are measured in benchmarks/bench_startup.py; these tests pin the cause, the import graph.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numba", "zarr", "torch", "numpy", "fsspec", "tqdm", "neurodata.reader")


def imported_after(code: str) -> set[str]:
    """The top-level and listed modules present in ``sys.modules`` after running ``code`` in a fresh
    interpreter (the checkout first on the path, as the other CLI tests run it)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_no_decoder_torch_or_numpy():
    code = (
        "import contextlib, io\n"
        "from neurodata.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    assert not (imported_after(code) & set(HEAVY))


def test_a_command_imports_its_own_module_only():
    modules = imported_after("from neurodata.cli.main import build_parser\nbuild_parser(['formats'])")
    assert "neurodata.cli.formats" in modules
    assert not {"neurodata.cli.train", "neurodata.cli.live", "neurodata.cli.prepare"} & modules
    assert "torch" not in modules


def test_import_snn_leaves_the_compiler_alone():
    modules = imported_after("import snn")
    assert "torch" in modules
    assert not {"torch._dynamo", "sympy", "triton"} & modules
    assert "numba" not in modules  # the Numba backend loads on its first use


def test_the_numba_backend_loads_on_first_use():
    code = "import torch, snn\nassert snn.LIF()(torch.full((4, 2, 3), 2.0)).sum() > 0\n"  # CPU fp32: the numba backend
    assert {"numba", "snn.backends.numba_backend"} <= imported_after(code)
    compiled_first = (  # the first forward inside torch.compile loads it too, with the eager values
        "import torch, snn\n"
        "net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn.LIF())\n"
        "torch.nn.init.constant_(net[0].weight, 1.0)\n"
        "x = torch.full((5, 2, 3), 2.0)  # drives every neuron past its threshold\n"
        "compiled = torch.compile(net, backend='eager')(x)\n"
        "assert torch.equal(compiled, net(x)) and compiled.sum() > 0\n"
    )
    assert "snn.backends.numba_backend" in imported_after(compiled_first)


def test_lazy_public_names_resolve():
    import neurodata as nd

    assert nd.read.__module__ == "neurodata.reader"
    assert "open_recording" in dir(nd)
    from neurodata import EVENT_DTYPE, write  # noqa: F401  (from-imports go through __getattr__ too)


def test_prepare_lists_the_archive_before_importing_zarr_or_numba(tmp_path):
    """``neurodata prepare`` imports the cache writer (zarr) and the decoders (Numba) on its warm-up
    thread while the archive is listed: neither its command module nor the listing imports them."""
    archive = tmp_path / "DvsGesture.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("DvsGesture/trials_to_train.txt")
        info.size = 12
        tar.addfile(info, io.BytesIO(b"user01.aedat"))
    code = (
        "from neurodata.cli.main import build_parser\n"
        "build_parser(['prepare'])\n"
        "from neurodata.datasets.sources import open_in_place\n"
        "from pathlib import Path\n"
        f"assert open_in_place(Path({str(archive)!r})).names() == ['DvsGesture/trials_to_train.txt']\n"
    )
    modules = imported_after(code)
    assert {"neurodata.cli.prepare", "neurodata.datasets.prepare", "neurodata.datasets.tar_tree"} <= modules
    assert not {"zarr", "numba", "fsspec", "scipy", "tqdm", "neurodata.cache.writer", "neurodata.reader"} & modules


SPY_DECODE = """
import json, os, sys
from neurodata.datasets import decoding
from neurodata.datasets.prepare import prepare
real = decoding.decode_part
def spy(*args, **kwargs):
    with open({log!r}, "a") as log:
        log.write(json.dumps([os.getpid(), "zarr" in sys.modules, "numba" in sys.modules]) + "\\n")
    return real(*args, **kwargs)
decoding.decode_part = spy
summary = prepare("dvs128", source={archive!r}, root={root!r}, workers=2, progress=False, verify=False)
print(json.dumps([os.getpid(), summary["n_events"], "zarr" in sys.modules]))
"""


def test_prepare_forks_its_decode_workers_before_importing_zarr(tmp_path):
    """The decode workers of a streamed ``.tar.gz`` fork once the decoders' kernels are loaded but
    before zarr is imported (only the commit needs it, and it loads while they decode): what each
    worker saw at its fork says so, and the cache is still built."""
    from neurodata.sim.gestures import write_archive

    archive = write_archive(
        tmp_path / "DvsGesture.tar.gz", n_users=2, n_test_users=1, lightings=("led",), gesture_us=100_000, frame_us=20_000
    )
    log = tmp_path / "decode.log"
    code = SPY_DECODE.format(log=str(log), archive=str(archive), root=str(tmp_path / "root"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    main_pid, n_events, main_has_zarr = json.loads(out.stdout.strip().splitlines()[-1])
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert n_events > 0 and main_has_zarr
    assert seen and all(pid != main_pid for pid, _, _ in seen)  # decoded in forked workers
    assert all(numba and not zarr for _, zarr, numba in seen)
