"""The caller's event layout, remembered so a transform can hand back the form it was given.

Transforms and representations compute on :data:`~neurodata.events.EVENT_DTYPE` records. Callers
bring other forms: Tonic's structured arrays (fields ``x, y, t, p`` of int64, in that order),
one-dimensional audio events without ``y`` (``x, t, p``, as in SHD), SpikingJelly's dict of column
arrays, polarities -1/+1 or booleans, and sensors with more than two polarity channels.
:meth:`EventLayout.of` reads the form, :meth:`EventLayout.records` converts to records and
:meth:`EventLayout.restore` converts a result back, so ``transform(events).dtype == events.dtype``.

Polarity rule: an input with a negative polarity uses the -1/+1 convention (ON = p > 0, restored
as -1/+1); otherwise polarities are channel indices kept as they are (0/1, booleans, or 0..P-1 for
a sensor with P channels). Fields other than t, x, y, p are not carried through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..events import EVENT_DTYPE, make_events
from .kernels import value_range

REQUIRED = ("t", "x", "p")


def _columns(events) -> tuple[Mapping, tuple[str, ...], int]:
    """The column source, its field names and its length; TypeError for anything else."""
    if isinstance(events, np.ndarray) and events.dtype.names is not None:
        return events, events.dtype.names, len(events)
    if isinstance(events, Mapping):
        names = tuple(events)
        lengths = {len(np.asarray(events[k])) for k in names if k in ("t", "x", "y", "p")}
        if len(lengths) > 1:
            raise ValueError(f"event columns have different lengths {sorted(lengths)}")
        return events, names, lengths.pop() if lengths else 0
    raise TypeError(
        "events must be a structured numpy array or a dict of column arrays with fields t, x, (y,) p; "
        f"got {type(events).__name__}"
        + (f" of shape {events.shape} (a raster? this transform takes events)" if isinstance(events, np.ndarray) else "")
    )



def scan_polarities(p: np.ndarray) -> tuple[bool, int]:
    """Whether the polarity column ``p`` holds -1/+1 polarities (a negative value), and its largest
    value (one Numba pass; none for uint8 and bool, which can be neither negative nor past 255).

    Args:
        p: A polarity column of any numeric dtype and byte order.
    """
    if not p.dtype.isnative:  # e.g. big-endian columns: the Numba scan reads native order only
        p = p.astype(p.dtype.newbyteorder("="))
    scan = len(p) and (p.dtype.kind in "if" or (p.dtype.kind == "u" and p.dtype.itemsize > 1))
    low, top = value_range(p) if scan else (0, 0)
    return bool(low < 0), int(top)


def channel_polarities(p: np.ndarray, signed: bool, top: int) -> np.ndarray:
    """``p`` as channel indices: -1/+1 polarities (``signed``) as 0/1, others as they are; ValueError
    when the largest, ``top`` (see :func:`scan_polarities`), is past 255.

    Args:
        p: The polarity column.
        signed: It holds -1/+1 polarities.
        top: Its largest value.
    """
    if signed:
        return (p > 0).astype(np.uint8)
    if top > np.iinfo(np.uint8).max:
        raise ValueError(f"polarity {top} is not a channel index (0..255) nor -1/+1")
    return p


@dataclass(frozen=True)
class EventLayout:
    """How the caller's events look: enough to rebuild that form from EVENT_DTYPE records.

    Attributes:
        dtype: the caller's structured dtype (``None`` for a dict of columns).
        column_dtypes: for a dict input, each column's dtype, in the dict's order.
        has_y: whether the input carries a ``y`` field (audio events do not).
        signed: whether polarities follow the -1/+1 convention.
        top_polarity: the largest polarity value where it could pass 255 (else 0).
    """

    dtype: np.dtype | None
    column_dtypes: tuple[tuple[str, np.dtype], ...]
    has_y: bool
    signed: bool
    top_polarity: int = 0

    @classmethod
    def of(cls, events) -> EventLayout:
        """Read the layout of a structured array or dict of columns (TypeError/ValueError otherwise)."""
        source, names, n = _columns(events)
        missing = [f for f in REQUIRED if f not in names]
        if missing:
            raise ValueError(f"event array lacks field(s) {missing}; it has {list(names)}")
        signed, top = scan_polarities(np.asarray(source["p"]))
        if isinstance(source, np.ndarray):
            return cls(source.dtype, (), "y" in names, signed, int(top))
        kept = tuple((k, np.asarray(source[k]).dtype) for k in names if k in ("t", "x", "y", "p"))
        return cls(None, kept, "y" in names, signed, int(top))

    @property
    def native(self) -> bool:
        """True when the caller's events already are EVENT_DTYPE records (no conversion at all)."""
        return self.dtype == EVENT_DTYPE

    def records(self, events) -> np.ndarray:
        """The events as EVENT_DTYPE records (the input itself when it already is)."""
        if self.native:
            return events
        source, _, n = _columns(events)
        p = channel_polarities(np.asarray(source["p"]), self.signed, self.top_polarity)
        y = source["y"] if self.has_y else np.zeros(n, dtype=np.uint16)
        return make_events(source["t"], source["x"], y, p)

    def restore(self, records: np.ndarray):
        """EVENT_DTYPE records -> the caller's form (structured dtype and field order, or dict)."""
        if self.native:
            return records
        p = records["p"]
        if self.signed:
            p = np.where(p > 0, 1, -1)
        columns = {"t": records["t"], "x": records["x"], "p": p}
        if self.has_y:
            columns["y"] = records["y"]
        if self.dtype is None:
            return {k: _checked(columns[k], dtype, k).astype(dtype, copy=False) for k, dtype in self.column_dtypes}
        names = [k for k in self.dtype.names if k in columns]
        out = np.empty(len(records), dtype=[(k, self.dtype.fields[k][0]) for k in names])
        for k in names:
            out[k] = _checked(columns[k], out.dtype.fields[k][0], k)
        return out


def _checked(values: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``values``, after making sure they fit ``dtype`` (no silent integer wrap, e.g. upsampled x
    into int16); the check is skipped where every value of ``values``' type fits."""
    if dtype.kind in "iu" and len(values) and not np.can_cast(values.dtype, dtype, "safe"):
        info = np.iinfo(dtype)
        lo, hi = int(values.min()), int(values.max())
        if lo < info.min or hi > info.max:
            raise ValueError(f"field {name!r}: values {lo}..{hi} do not fit the input's {dtype}")
    return values


def lacks_y(events) -> bool:
    """True for one-dimensional (audio) events: a structured array or dict without a ``y`` field."""
    names = events.dtype.names if isinstance(events, np.ndarray) else tuple(events)
    return names is not None and "y" not in names


def as_records(events) -> np.ndarray:
    """Any accepted event form as EVENT_DTYPE records (see the module docstring)."""
    return EventLayout.of(events).records(events)
