"""Shared test fixtures: where the conformance recordings live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property and fuzz tests draw the same examples on every run, so a green suite stays green on the
# same code (CI once failed on a fresh random draw); HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

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
