"""Shared test fixtures: where the conformance recordings live."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Triton kernels in this process run under its interpreter, on CPU tensors (the CUDA checks run in a
# fresh process without it: tests/test_cuda.py). It must be set before anything imports triton, and
# importing snn does (torch.compiler.disable pulls in torch._dynamo, which imports triton): a test
# module collected before the Triton tests that imports snn would otherwise leave them uninterpreted.
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property and fuzz tests draw the same examples on every run, so a green suite stays green on the
# same code (CI once failed on a fresh random draw); HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parents[1]
# The conformance recordings are vendored in the repository (tests/data/fixtures, see its PROVENANCE.md);
# NEURODATA_FIXTURES points the tests at another copy laid out the same way.
FIXTURES = Path(os.environ.get("NEURODATA_FIXTURES", ROOT / "tests" / "data" / "fixtures"))


def checked_fixtures(folder: Path) -> Path:
    """``folder`` after checking every file listed in its ``SHA256SUMS``.

    Parameters
    ----------
    folder:
        A fixtures folder holding ``SHA256SUMS`` (lines ``<sha256>  ./<relative path>``).

    A missing or altered file fails the test that asked for it with the file's name: the fixtures
    ship with the repository, so their absence is a broken checkout, never a reason to skip.
    """
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        pytest.fail(f"conformance fixtures not found: {sums} is missing (tests/data/fixtures ships with the repository)")
    for line in sums.read_text().splitlines():
        expected, _, name = line.partition("  ")
        path = folder / name
        if not path.is_file():
            pytest.fail(f"conformance fixture missing: {path}")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            pytest.fail(f"conformance fixture altered: {path} has sha256 {actual}, SHA256SUMS says {expected}")
    return folder


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The folder of conformance fixtures (``tests/data/fixtures``), checked against its checksums."""
    return checked_fixtures(FIXTURES)


def peer_missing(reason: str) -> None:
    """Skip a test whose peer library is absent, or fail it where the peers must be present.

    Parameters
    ----------
    reason:
        Which peer is missing and where it lives.

    ``.ci/run`` runs the peer tests in a second environment with ``NEURODATA_REQUIRE_PEERS=1``: there
    a missing peer is a broken set-up, not a reason to skip.
    """
    if os.environ.get("NEURODATA_REQUIRE_PEERS") == "1":
        pytest.fail(f"{reason}; NEURODATA_REQUIRE_PEERS=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for the module: tiny tensors run faster alone than with threads contending
    for a small machine's cores (the digits evidence tests train dozens of tiny networks)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
