"""The one in-memory event representation used everywhere in neurodata.

Events are a numpy structured array with fields ``t`` (int64, microseconds), ``x`` and ``y``
(uint16) and ``p`` (uint8, 1 = ON, 0 = OFF). The field names follow Tonic's, so arrays pass
between the two libraries unchanged. Recording-level facts (sensor size, source format, time
origin) travel beside the array in a :class:`RecordingInfo`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])


def empty_events(n: int = 0) -> np.ndarray:
    """An uninitialised event array of length ``n`` (zeros when ``n == 0``)."""
    return np.empty(n, dtype=EVENT_DTYPE)


def make_events(t, x, y, p) -> np.ndarray:
    """Build an event array from four equally long column sequences ``t``, ``x``, ``y`` and ``p``,
    casting each to its field's type.

    Values the field cannot hold exactly (a fraction, NaN, a negative coordinate, a time past
    int64) raise ValueError naming the column and the index instead of being truncated or wrapped;
    booleans and integer columns that fit are taken without a scan.

    Args:
        t: Times in microseconds.
        x: Columns, 0..65535.
        y: Rows, 0..65535.
        p: Polarities, 0..255 (1 = ON) or booleans.
    """
    columns = {"t": np.asarray(t), "x": np.asarray(x), "y": np.asarray(y), "p": np.asarray(p)}
    n = len(columns["t"])
    for name, values in columns.items():
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values, expected {n} like 't'")
        _check_fits(name, values)
    events = np.empty(n, dtype=EVENT_DTYPE)
    for name, values in columns.items():
        events[name] = values
    return events


def _check_fits(name: str, values: np.ndarray) -> None:
    """ValueError naming column ``name`` and the first index whose value its field cannot hold."""
    field = EVENT_DTYPE[name]
    if values.size == 0 or values.dtype.kind == "b" or (values.dtype.kind in "iu" and np.can_cast(values.dtype, field)):
        return
    if values.dtype.kind not in "iuf":
        raise ValueError(f"column {name!r} holds {values.dtype} values, not numbers")
    limits = np.iinfo(field)
    if values.dtype.kind in "iu" and limits.min <= values.min() and values.max() <= limits.max:
        return  # two passes, no temporary arrays: the common case of int64 columns that fit
    fits = (values >= limits.min) & (values <= limits.max)
    if values.dtype.kind == "f":
        fits &= np.floor(values) == values  # NaN fails every comparison
    if not fits.all():
        index = int(np.argmin(fits))
        raise ValueError(
            f"column {name!r}: value {values[index]} at index {index} is not a whole number in "
            f"{limits.min}..{limits.max} ({field})"
        )


def as_events(array: np.ndarray) -> np.ndarray:
    """Convert any structured array with t/x/y/p fields (e.g. from Tonic) to :data:`EVENT_DTYPE`.

    Polarities are mapped so that any positive value (True, 1, +1) becomes 1 and anything else 0,
    which also accepts the -1/+1 convention.
    """
    if array.dtype == EVENT_DTYPE:
        return array
    names = array.dtype.names or ()
    missing = [f for f in ("t", "x", "y", "p") if f not in names]
    if missing:
        raise ValueError(f"event array lacks field(s) {missing}; it has {list(names)}")
    return make_events(array["t"], array["x"], array["y"], (array["p"] > 0).astype(np.uint8))


def concatenate(chunks: list[np.ndarray]) -> np.ndarray:
    """Concatenate event chunks, returning an empty event array for an empty list."""
    if not chunks:
        return empty_events(0)
    if len(chunks) == 1:
        return chunks[0]
    dtype = chunks[0].dtype
    if dtype.names is None or dtype.hasobject or any(chunk.dtype != dtype for chunk in chunks):
        return np.concatenate(chunks)
    # numpy copies structured records field by field; viewed as opaque records the copy is a memcpy
    record = np.dtype((np.void, dtype.itemsize))
    out = np.empty(sum(len(chunk) for chunk in chunks), dtype)
    np.concatenate([chunk.view(record) for chunk in chunks], out=out.view(record))
    return out


def join(chunks: list[np.ndarray]) -> np.ndarray:
    """:func:`concatenate`, but chunks that lie side by side in one array (consecutive slices of
    it, as a decoder writing into an :class:`~neurodata.formats.output.EventArena` makes them)
    come back as a view of that array, uncopied."""
    filled = [chunk for chunk in chunks if len(chunk)]  # (numpy may place an empty slice anywhere)
    if len(filled) > 1 and _side_by_side(filled):
        base = filled[0].base
        first = (filled[0].ctypes.data - base.ctypes.data) // base.itemsize
        return base[first : first + sum(len(chunk) for chunk in filled)]
    return concatenate(filled if filled else chunks)


def _side_by_side(chunks: list[np.ndarray]) -> bool:
    """Whether the chunks are contiguous slices of one 1-d contiguous array, each starting where
    the one before ends."""
    base = chunks[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return False
    end = chunks[0].ctypes.data
    for chunk in chunks:
        if chunk.base is not base or chunk.dtype != base.dtype or not chunk.flags.c_contiguous:
            return False
        if chunk.ctypes.data != end:
            return False
        end += chunk.nbytes
    return True


@dataclass
class RecordingInfo:
    """Facts about a recording that do not fit in the per-event array.

    ``width``/``height`` are None when the file does not say and no default is known;
    ``time_origin`` is the absolute time (microseconds, Unix epoch when the format has one) that
    event time 0 corresponds to, or None; ``extra`` holds format-specific header fields;
    ``source`` names the file it came from (None for events made in memory).
    """

    format: str
    width: int | None = None
    height: int | None = None
    source: str | None = None
    time_origin: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sensor_size(self) -> tuple[int, int, int] | None:
        """Tonic-style ``(width, height, polarities)``, or None when the geometry is unknown."""
        if self.width is None or self.height is None:
            return None
        return (self.width, self.height, 2)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)
