"""Shared test fixtures: where the conformance recordings live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("NEURODATA_FIXTURES", ROOT.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The folder of conformance fixtures (``../shared/fixtures``); skips when it is not laid out."""
    if not FIXTURES.is_dir():
        pytest.skip(
            f"conformance fixtures not found at {FIXTURES} (the project was cloned without ../shared)"
        )
    return FIXTURES
