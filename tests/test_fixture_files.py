"""The vendored conformance fixtures are checked before any test reads them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, checked_fixtures


def test_vendored_fixtures_are_inside_the_repository() -> None:
    root = Path(__file__).resolve().parents[1]
    if "NEURODATA_FIXTURES" not in os.environ:
        assert FIXTURES.resolve().is_relative_to(root / "tests" / "data")
    assert checked_fixtures(FIXTURES) == FIXTURES


def test_an_altered_fixture_fails_naming_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES / "nmnist", copy / "nmnist")
    (copy / "SHA256SUMS").write_text(
        "".join(line + "\n" for line in (FIXTURES / "SHA256SUMS").read_text().splitlines() if "nmnist" in line)
    )
    assert checked_fixtures(copy) == copy
    data = bytearray((copy / "nmnist" / "sample_nmnist.bin").read_bytes())
    data[100] ^= 0xFF
    (copy / "nmnist" / "sample_nmnist.bin").write_bytes(bytes(data))
    with pytest.raises(pytest.fail.Exception, match=r"sample_nmnist\.bin has sha256"):
        checked_fixtures(copy)
    (copy / "nmnist" / "sample_nmnist.bin").unlink()
    with pytest.raises(pytest.fail.Exception, match=r"fixture missing: .*sample_nmnist\.bin"):
        checked_fixtures(copy)
