"""Run Tonic's own transform tests against ``neurodata.transforms`` (the drop-in contract).

    python tools/tonic_contract.py PATH/TO/tonic/test [--keep DIR]

Copies ``test_transforms.py``, ``test_representations.py``, ``test_chained_transforms.py`` and
``utils.py`` from a Tonic checkout's test folder into a temporary folder, changes only the line
``import tonic.transforms as transforms`` into ``import neurodata.transforms as transforms``, runs
them with pytest (this checkout first on ``PYTHONPATH``) and prints the pass count and each failure.
A failure is expected when its test is listed in docs/coming-from-tonic.md (a backticked
``test_file.py::test_name`` in the table of deliberate differences; any parametrisation matches).
Exit status: 0 when every failure is documented, 1 when one is not, 2 on bad input. Tonic's tests
are not part of this repository (Tonic is GPL); they are read from the checkout given.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIFFERENCES = ROOT / "docs" / "coming-from-tonic.md"
FILES = ("test_transforms.py", "test_representations.py", "test_chained_transforms.py", "utils.py")
IMPORT = re.compile(r"^import tonic\.transforms as transforms$", re.MULTILINE)


def documented_failures(page: Path = DIFFERENCES) -> set[str]:
    """``file::test`` names listed on the page (backticked), without parametrisation."""
    return set(re.findall(r"`(test_\w+\.py::test_\w+)`", page.read_text(encoding="utf-8")))


def copy_tests(source: Path, target: Path) -> None:
    """Copy the contract files, swapping the one import line; ValueError when a file or line is missing."""
    for name in FILES:
        path = source / name
        if not path.is_file():
            raise ValueError(f"{path}: missing (give the test folder of a Tonic checkout)")
        text = path.read_text(encoding="utf-8")
        if name != "utils.py":
            text, count = IMPORT.subn("import neurodata.transforms as transforms", text)
            if count != 1:
                raise ValueError(f"{path}: expected one line 'import tonic.transforms as transforms', found {count}")
        (target / name).write_text(text, encoding="utf-8")


def run_pytest(folder: Path) -> list[tuple[str, str]]:
    """``(file::test[params], outcome)`` for every test pytest ran in ``folder``."""
    report = folder / "report.xml"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "."],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, check=False,
    )
    if not report.exists():
        raise ValueError(f"pytest wrote no report in {folder}; run it there by hand to see why")
    results = []
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "failed", "skipped": "skipped"}[tag]
        results.append((f"{module}.py::{case.get('name')}", outcome))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tonic_tests", type=Path, help="the test folder of a Tonic checkout")
    parser.add_argument("--keep", type=Path, help="write the adapted tests here instead of a temporary folder")
    args = parser.parse_args(argv)
    allowed = documented_failures()
    with tempfile.TemporaryDirectory(prefix="tonic-contract-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            copy_tests(args.tonic_tests, folder)
            results = run_pytest(folder)
        except ValueError as error:
            print(f"tonic_contract: {error}", file=sys.stderr)
            return 2
        finally:
            shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    failed = [name for name, outcome in results if outcome == "failed"]
    passed = sum(outcome == "passed" for _, outcome in results)
    print(f"{passed} passed, {len(failed)} failed of {len(results)} Tonic tests")
    undocumented = [name for name in failed if name.split("[")[0] not in allowed]
    for name in failed:
        print(f"  {'UNDOCUMENTED' if name in undocumented else 'documented  '} {name}")
    if undocumented:
        print(f"{len(undocumented)} failure(s) not listed in {DIFFERENCES.relative_to(ROOT)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
