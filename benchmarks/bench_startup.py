"""Start-up times: ``import torch`` against ``import snn``, ``neurodata --help`` and ``neurodata info``.

Each command runs in a fresh interpreter ``--repeats`` times, interleaved; the table gives medians
(wall seconds). Targets (issue 20): ``import snn`` within 0.3 s of ``import torch``; ``neurodata
--help`` under 0.3 s; ``neurodata info FILE`` under 0.3 s plus the decode.

    PYTHONPATH=. python benchmarks/bench_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/data/fixtures/evt3"


def commands(recording: Path) -> dict[str, list[str]]:
    python = [sys.executable]
    return {
        "python -c pass": [*python, "-c", "pass"],
        "import torch": [*python, "-c", "import torch"],
        "import snn": [*python, "-c", "import snn"],
        "neurodata --help": [*python, "-m", "neurodata.cli", "--help"],
        f"neurodata info {recording.name}": [*python, "-m", "neurodata.cli", "info", str(recording)],
    }


def timed(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    recording = min(FIXTURE.glob("*.raw"), key=lambda p: p.stat().st_size)
    table = commands(recording)
    times: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(args.repeats):
        for name, argv in table.items():
            times[name].append(timed(argv))
    print(f"| command | median s (of {args.repeats}) |\n|---|---|")
    for name, values in times.items():
        print(f"| `{name}` | {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
