"""Independent check: public peer readers read the files our AEDAT writers produce.

Runs where the peers are installed (the benchmark environment):
``PYTHONPATH=. /work/benchenv/bin/python -m pytest -q tests/test_formats_aedat_peers.py``.
Both peers read ``eventCapacity`` slots and ignore the valid bit (and Tonic ignores the packet type
and ``eventTSOverflow``); we deliberately honour all four, so on a file with those traps they
disagree with us in exactly the predicted way.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import peer_missing

import neurodata as nd
from neurodata.formats import aedat31
from tests.peer_readers import spikingjelly_functions

PEER_ENV = "the peer tests' environment: .ci/run makes it, see docs/testing.md"

FIXED = nd.RecordingInfo("aedat31", extra={"start_time": "2017-01-01 12:00:00 (TZ+0000)"})
CIFAR10DVS_LOADER = (
    "_read_bits",
    "_skip_header",
    "_load_raw_events",
    "_parse_raw_address",
    "_load_events",
    "_load_origin_data",
)


@pytest.fixture(scope="module")
def load_aedat_v3():
    functions = spikingjelly_functions("utils", ("load_aedat_v3",))
    if functions is None:
        peer_missing(f"SpikingJelly is not installed here ({PEER_ENV})")
    return functions["load_aedat_v3"]


@pytest.fixture(scope="module")
def tonic_io():
    try:
        return importlib.import_module("tonic.io")
    except ImportError:
        peer_missing(f"Tonic is not installed here ({PEER_ENV})")


@pytest.fixture(scope="module")
def truth(fixtures) -> np.ndarray:
    with np.load(fixtures / "synthetic_ground_truth.npz", allow_pickle=False) as z:
        return nd.make_events(z["t"], z["x"], z["y"], z["p"])


def as_columns(peer: dict) -> np.ndarray:
    return nd.make_events(peer["t"], peer["x"], peer["y"], peer["p"])


def test_spikingjelly_reads_our_aedat31_including_ts_overflow(tmp_path, truth, load_aedat_v3):
    events = truth.copy()
    events["t"] += (1 << 31) - 300_000  # crosses 2**31: later packets carry eventTSOverflow = 1
    path = tmp_path / "ours.aedat"
    aedat31.write_aedat31(path, events, FIXED, packet_events=128)
    np.testing.assert_array_equal(as_columns(load_aedat_v3(path)), events)


def test_spikingjelly_counts_invalid_and_spare_slots_we_drop(tmp_path, truth, load_aedat_v3):
    """Deliberate difference: SpikingJelly returns invalidated events and unused capacity slots."""
    path = tmp_path / "traps.aedat"
    traps = aedat31.Traps(special_every=2, invalid_every=3, spare_slots=2)
    aedat31.write_aedat31(path, truth, FIXED, packet_events=100, traps=traps)
    ours = nd.read(path)
    np.testing.assert_array_equal(ours, truth)
    peer = as_columns(load_aedat_v3(path))
    n_packets = -(-len(truth) // 100)
    extra = sum(min(100, len(truth) - 100 * k) // 3 for k in range(n_packets)) + 2 * n_packets
    assert len(peer) == len(truth) + extra
    assert (peer["x"] == 0x7FFF).sum() == 2 * n_packets  # the garbage spare slots
    assert np.isin(ours, peer).all()  # it still holds every real event


def test_spikingjelly_cifar10dvs_loader_reads_our_aedat2(tmp_path, truth):
    """SpikingJelly's CIFAR10-DVS convention is a transpose plus flips of jAER's: x' = 127 - y, y' = x."""
    functions = spikingjelly_functions("cifar10_dvs", CIFAR10DVS_LOADER)
    if functions is None:
        peer_missing(f"SpikingJelly is not installed here ({PEER_ENV})")
    path = tmp_path / "ours.aedat"
    nd.write(path, truth, format="aedat2")
    peer = functions["_load_origin_data"](path)
    np.testing.assert_array_equal(peer["t"], truth["t"])
    np.testing.assert_array_equal(peer["x"], 127 - truth["y"].astype(np.int64))
    np.testing.assert_array_equal(peer["y"], truth["x"])
    np.testing.assert_array_equal(peer["p"], truth["p"])


def tonic_raw_records(tonic_io, path) -> np.ndarray:
    version, data_start, _ = tonic_io.read_aedat_header_from_file(str(path))
    return tonic_io.get_aer_events_from_file(str(path), version, data_start)


def test_tonic_reads_our_aedat2_addresses(tmp_path, truth, tonic_io):
    path = tmp_path / "ours.aedat"
    nd.write(path, truth, format="aedat2")
    records = tonic_raw_records(tonic_io, path)
    addr = records["address"].astype(np.int64)
    np.testing.assert_array_equal(records["timeStamp"], truth["t"])
    np.testing.assert_array_equal(127 - ((addr >> 1) & 0x7F), truth["x"])
    np.testing.assert_array_equal((addr >> 8) & 0x7F, truth["y"])
    np.testing.assert_array_equal(1 - (addr & 1), truth["p"])


def test_tonic_legacy_readers_crash_on_valid_files(tmp_path, truth, tonic_io, fixtures):
    """ANCHORS: Tonic's DVS128 and DVS-Gesture readers unpack 2 of the 3 header values and crash."""
    nd.write(tmp_path / "ours.aedat", truth, format="aedat2")
    with pytest.raises(ValueError, match="too many values to unpack"):
        tonic_io.read_dvs_128(str(tmp_path / "ours.aedat"))
    with pytest.raises(ValueError, match="too many values to unpack"):
        tonic_io.read_dvs_ibm(str(fixtures / "aedat31" / "synthetic_user00_fluorescent.aedat"))


def test_tonic_aedat31_records_include_traps(tmp_path, truth, tonic_io):
    """Tonic's AEDAT 3 path reads capacity slots of every packet type and ignores eventTSOverflow."""
    events = truth.copy()
    events["t"] += (1 << 31) - 300_000
    path = tmp_path / "traps.aedat"
    traps = aedat31.Traps(special_every=2, invalid_every=3, spare_slots=2)
    aedat31.write_aedat31(path, events, FIXED, packet_events=100, traps=traps)
    records = tonic_raw_records(tonic_io, path)
    assert len(records) > len(events)  # special, invalid and spare slots all come back as events
    assert records["timeStamp"].max() < (1 << 31) <= events["t"].max()  # the overflow epoch is lost
    np.testing.assert_array_equal(nd.read(path), events)
