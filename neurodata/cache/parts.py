"""The staged form of a part: each event column as plain files of Blosc frames, no zarr metadata.

A part lives only between its decoding and the commit, which reads it once. Writing it as zarr
arrays cost more than decoding the events (array metadata and the async codec pipeline per array
dwarf the compression; figures in docs/sections/cache.md), so a part is stored as
``<field>/<k>``: frame ``k`` holds events ``[k * frame_events, (k + 1) * frame_events)`` of the
column, compressed by Blosc (lz4, bit shuffle; times already per-sample delta coded), each column
in the narrowest of its stored dtypes that holds the part's values (``staged_dtypes`` in
``done.json``): less to compress and to decode. The commit reads only the frames a shard needs.
``PART_FORMAT`` is recorded in each part's ``done.json``; parts staged in another format are
written again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numcodecs import Blosc

from .layout import EVENT_FIELDS
from .store import Location

PART_FORMAT = 4  # 1 was a zarr group per part; 2 had no value ranges in done.json; 3 staged the widest dtypes
_BLOSC = Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE)


def encode_columns(columns: dict[str, np.ndarray], frame_events: int) -> dict[str, bytes]:
    """``{"<field>/<k>": compressed frame}`` for the event columns (already time coded).

    Args:
        columns: Each event field's column (times per-sample delta coded), all of one length, in
            its staged dtype.
        frame_events: Events per frame.
    """
    files = {}
    for field in EVENT_FIELDS:
        column = np.ascontiguousarray(columns[field])
        for k, start in enumerate(range(0, len(column), frame_events)):
            files[f"{field}/{k}"] = _BLOSC.encode(column[start : start + frame_events])
    return files


def read_span(
    location: Location, frame_events: int, dtypes: Sequence[str], lo: int, hi: int
) -> list[np.ndarray]:
    """Events ``[lo, hi)`` of a staged part, one array per event field in its staged dtype (fetching
    only the frames needed).

    Args:
        location: The staged part's folder.
        frame_events: Events per frame the part was staged with.
        dtypes: Its staged dtypes, in ``EVENT_FIELDS`` order.
        lo: First event.
        hi: One past the last event.
    """
    columns = [np.empty(max(hi - lo, 0), dtype) for dtype in dtypes]
    read_span_into(location, frame_events, dtypes, lo, columns)
    return columns


def read_span_into(
    location: Location, frame_events: int, dtypes: Sequence[str], lo: int, columns: Sequence[np.ndarray]
) -> None:
    """Events ``[lo, lo + n)`` of a staged part into ``columns`` (one array of ``n`` per event field,
    in ``EVENT_FIELDS`` order, each of the staged dtype or a wider one; views of a larger array are
    fine): only the frames needed are fetched, and a frame wholly inside the span whose dtype is the
    column's is decoded in place, not copied.

    Args:
        location: The staged part's folder.
        frame_events: Events per frame the part was staged with.
        dtypes: Its staged dtypes, in ``EVENT_FIELDS`` order.
        lo: First event.
        columns: Where the events go.
    """
    hi = lo + len(columns[0])
    if hi <= lo:
        return
    frames = range(lo // frame_events, (hi - 1) // frame_events + 1)
    blobs = location.fs.cat([location.key(f"{field}/{k}") for field in EVENT_FIELDS for k in frames])
    for field, dtype, column in zip(EVENT_FIELDS, dtypes, columns):
        for k in frames:
            blob = blobs[location.key(f"{field}/{k}")]
            first = k * frame_events
            start, stop = max(first, lo), min(first + frame_events, hi)
            if (start, stop) == (first, first + frame_events) and column.dtype == dtype:
                _BLOSC.decode(blob, out=column[start - lo : stop - lo])
            else:  # an edge frame (or a part's last, shorter one) or a wider column: copied
                frame = np.frombuffer(_BLOSC.decode(blob), dtype)
                column[start - lo : stop - lo] = frame[start - first : stop - first]
