"""Column files (.npz / HDF5 with t, x, y, p) read back: our exports and SpikingJelly's events_np files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

import neurodata as nd
from neurodata.cli.main import main
from neurodata.errors import FormatError
from tests.fuzzing import MUTATIONS, mutate


@pytest.fixture
def recording(fixtures):
    return nd.read(fixtures / "evt3" / "evt3_sample.raw", return_info=True)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_exports_round_trip_with_their_recording_info(tmp_path, recording, suffix):
    events, info = recording
    path = tmp_path / f"out{suffix}"
    nd.write(path, events, info)
    back, back_info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(back, events)
    assert (back_info.width, back_info.height) == (info.width, info.height) == (1280, 720)
    assert back_info.format == {".npz": "npz", ".h5": "hdf5"}[suffix]
    # streamed reads give the same events
    with nd.open_recording(path) as rec:
        np.testing.assert_array_equal(np.concatenate(list(rec.chunks(n_events=10_000))), events)


def test_spikingjelly_events_np_files_read_as_events(tmp_path, recording):
    events, _ = recording
    # SpikingJelly's events_np layout: np.savez_compressed(t=, x=, y=, p=) of int64 columns
    cols = {name: events[name].astype(np.int64) for name in ("t", "x", "y", "p")}
    np.savez_compressed(tmp_path / "0.npz", **cols)
    np.testing.assert_array_equal(nd.read(tmp_path / "0.npz"), events)
    # the -1/+1 polarity convention maps to 0/1
    np.savez(tmp_path / "pm.npz", **{**cols, "p": cols["p"] * 2 - 1})
    np.testing.assert_array_equal(nd.read(tmp_path / "pm.npz")["p"], events["p"])


def test_bad_column_files_are_refused_by_name(tmp_path):
    n = 5
    good = {"t": np.arange(n), "x": np.arange(n), "y": np.arange(n), "p": np.ones(n, np.int8)}
    np.savez(tmp_path / "missing.npz", t=good["t"], x=good["x"], y=good["y"])
    with pytest.raises(FormatError, match=r"missing.npz: .*no column\(s\) \['p'\]"):
        nd.read(tmp_path / "missing.npz")
    np.savez(tmp_path / "wide.npz", **{**good, "x": np.array([0, 1, 2, 3, 70_000])})
    with pytest.raises(FormatError, match="column 'x' has values outside 0..65535"):
        nd.read(tmp_path / "wide.npz")
    np.savez(tmp_path / "ragged.npz", **{**good, "y": np.arange(n + 1)})
    with pytest.raises(FormatError, match=r"column 'y' has shape \(6,\), expected \(5,\)"):
        nd.read(tmp_path / "ragged.npz")
    np.savez(tmp_path / "floats.npz", **{**good, "t": np.linspace(0, 1, n)})
    with pytest.raises(FormatError, match="column 't' holds float64"):
        nd.read(tmp_path / "floats.npz")
    # object arrays would need unpickling: refused, never loaded
    objects = np.empty(n, object)
    objects[:] = [{"a": i} for i in range(n)]
    np.savez(tmp_path / "pickled.npz", **{**good, "t": objects})
    with pytest.raises(FormatError, match="pickled.npz"):
        nd.read(tmp_path / "pickled.npz")


def test_convert_reads_an_export_back_into_an_event_format(tmp_path, recording, capsys):
    events, info = recording
    nd.write(tmp_path / "a.h5", events, info)
    assert main(["convert", str(tmp_path / "a.h5"), str(tmp_path / "b.raw"), "--out-format", "evt2"]) == 0
    np.testing.assert_array_equal(nd.read(tmp_path / "b.raw"), events)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=MUTATIONS)
@example(ops=[("flip", 49, 0)])  # found by CI: h5py raised OverflowError on this HDF5 superblock
def test_fuzzed_column_files_decode_or_raise_format_error(tmp_path, suffix, ops):
    n = 300
    rng = np.random.default_rng(0)
    events = nd.make_events(
        np.sort(rng.integers(0, 10**6, n)),
        rng.integers(0, 128, n),
        rng.integers(0, 128, n),
        rng.integers(0, 2, n),
    )
    original = tmp_path / f"orig{suffix}"
    if not original.exists():
        nd.write(original, events)
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(mutate(original.read_bytes(), ops))
    try:
        got = nd.read(path, format={".npz": "npz", ".h5": "hdf5"}[suffix])
    except FormatError:
        return
    assert got.dtype == nd.EVENT_DTYPE
