"""Where decoders put events: fresh arrays, or an arena whose consecutive rows join without copying."""

from __future__ import annotations

import numpy as np
import pytest

import neurodata as nd
from neurodata.events import concatenate, join
from neurodata.formats import get_format
from neurodata.formats.output import EventArena, FreshArrays
from neurodata.reader import rechunk_by_time
from neurodata.synthetic import rotating_bar


@pytest.fixture(scope="module")
def events():
    return rotating_bar(width=64, height=48, duration_us=100_000, step_us=500)


def test_concatenate_matches_numpy_for_event_and_other_arrays(events):
    parts = [events[:10], events[10:500:3], events[500:]]
    np.testing.assert_array_equal(concatenate(parts), np.concatenate(parts))
    assert not np.shares_memory(concatenate(parts), events)
    plain = [np.arange(5), np.arange(3)]
    np.testing.assert_array_equal(concatenate(plain), np.concatenate(plain))


def test_join_views_side_by_side_slices_and_copies_the_rest(events):
    events = events.copy()  # an array owning its memory, as an arena's arrays do
    joined = join([events[100:200], events[200:200], events[200:350]])
    np.testing.assert_array_equal(joined, events[100:350])
    assert joined.base is events  # a view, no copy
    for parts in ([events[:10], events[11:20]], [events[10:20], events[:10]], [events[:10], events[10:20:2]],
                  [events[:10], events[10:20].copy()]):  # fmt: skip
        got = join(parts)
        np.testing.assert_array_equal(got, np.concatenate(parts))
        assert not np.shares_memory(got, events)


def test_arena_keeps_rows_side_by_side_and_reuses_an_array_no_view_holds():
    arena = EventArena(rows=10)
    first = arena.keep(arena.take(6), 4)
    second = arena.keep(arena.take(5), 5)  # the unused rows of the first take come back
    assert second.base is first.base
    assert second.__array_interface__["data"][0] == first.__array_interface__["data"][0] + first.nbytes
    third = arena.keep(arena.take(6), 6)  # does not fit: the next array
    assert third.base is not first.base
    held = id(first.base)
    fourth = arena.keep(arena.take(8), 8)  # the first array is still viewed: a new one
    assert id(fourth.base) != held
    filled = id(third.base)
    del third
    arena.keep(arena.take(10), 10)  # the third's array has no view left: used again
    assert id(arena.array) == filled
    big = arena.keep(arena.take(25), 25)  # larger than an arena array: its own size
    assert len(big) == 25


def test_fresh_arrays_shrink_a_mostly_unused_room():
    """A room mostly used is kept as a view; one mostly unused is shrunk in place to the rows kept
    (they keep their values; no memory is left pinned by the estimate, and the rows are not copied
    out, which cost a whole file's events twice over)."""
    fresh = FreshArrays()
    room = fresh.take(100)
    room[:] = nd.make_events(np.arange(100), np.arange(100) % 7, np.arange(100) % 5, np.arange(100) % 2)
    assert fresh.keep(room, 95).base is room
    expected = room[:10].copy()
    kept = fresh.keep(room, 10)
    assert kept is room and kept.flags.owndata and kept.nbytes == 10 * kept.itemsize
    np.testing.assert_array_equal(kept, expected)


@pytest.mark.parametrize("fmt", ["evt3", "aedat4"])
def test_decoding_into_an_arena_gives_the_same_events_and_windows_as_views(tmp_path, events, fmt):
    path = tmp_path / f"rec.{'raw' if fmt == 'evt3' else 'aedat4'}"
    extra = {"packet_events": 64} if fmt == "aedat4" else {}
    nd.write(path, events, nd.RecordingInfo(fmt, 64, 48, extra=extra))
    with nd.open_recording(path) as rec:
        header = rec.header
    data = np.fromfile(path, dtype=np.uint8)
    decoded = {}
    for name, output in (("fresh", FreshArrays()), ("arena", EventArena(rows=1 << 16))):
        decoder = get_format(fmt).make_decoder(header, str(path))
        decoder.output = output
        blocks, pos, end = [], header.data_offset, header.data_offset
        while pos < len(data):
            end = min(len(data), end + 1000)
            block, used = decoder.decode(data[pos:end], pos, end == len(data))
            blocks.append(block)
            pos += used
        decoded[name] = blocks
        np.testing.assert_array_equal(concatenate(blocks), events)
    windows = list(rechunk_by_time(iter(decoded["arena"]), 10_000))
    np.testing.assert_array_equal(concatenate(windows), events)
    arena_array = decoded["arena"][0].base
    assert sum(w.base is arena_array for w in windows) == len(windows)  # one arena array: all views
