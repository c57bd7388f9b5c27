"""Where each frame starts and ends: index ranges ``[starts[i], ends[i])`` into time-sorted events.

Every slicing rule returns two int64 arrays of the same length (the number of frames). Ranges may
overlap (``overlap > 0``) and may be empty. The rules, stated once (see the package docstring):

* The recording spans the closed interval ``[t_first, t_last]`` (or ``[start_time, end_time]``).
* Bins are half-open in time, ``[start, end)``, except that the last bin is closed at the span end,
  so an event at ``t_last`` belongs to the last bin instead of being dropped.
* Only ``include_incomplete=False`` with ``time_window``/``event_count`` leaves events out: the
  trailing remainder that does not fill a whole window, which is what that flag asks for.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..arguments import finite_number, whole_number
from ._memory import check_fits
from .kernels import search_sorted

Slices = tuple[np.ndarray, np.ndarray]
SLICE_BYTES = 32  # a window's start and end indices, and its edges while they are computed


def _one_empty_slice(n_slices: int = 1) -> Slices:
    zeros = np.zeros(n_slices, dtype=np.int64)
    return zeros, zeros.copy()


def _span(t: np.ndarray, start_time, end_time) -> tuple[float, float] | None:
    """The closed time span to slice: explicit bounds win, else the first and last timestamps."""
    if len(t) == 0 and (start_time is None or end_time is None):
        return None
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if value is not None:
            finite_number(name, value)
    begin = t[0] if start_time is None else start_time
    end = t[-1] if end_time is None else end_time
    if end < begin:
        raise ValueError(f"end_time ({end}) is before start_time ({begin})")
    if _exact(end) - _exact(begin) >= 2**63:  # int64 arithmetic on the span would wrap
        raise ValueError(f"the time span {begin} to {end} is 2**63 us or more; shift or split the times")
    return begin, end


def _edge_times(begin, offsets: np.ndarray) -> np.ndarray:
    """``ceil(begin + offsets)`` as int64, exact for a large ``begin`` (Unix-time microseconds, where
    float64 keeps only quarter microseconds): the offsets from the span start are added to its whole
    part after rounding up.

    Integer timestamps satisfy ``t >= edge`` exactly when ``t >= ceil(edge)``, so fractional edges
    are rounded up, and searched as int64 (a float search would convert all of ``t``).
    """
    whole = _whole_part(begin)
    return whole + np.ceil(float(begin - whole) + offsets).astype(np.int64)


def _whole_part(value) -> int:
    """``floor(value)`` as a Python int, exact for any int64 (``math.floor`` would go through float64)."""
    return int(value) if isinstance(value, int | np.integer) else math.floor(value)


def _time_edges_to_indices(t: np.ndarray, begin, start_offsets: np.ndarray, end_offsets: np.ndarray, span_end) -> Slices:
    """Turn window times (offsets from the span start ``begin``) into index ranges; the last window,
    if it reaches the span end ``span_end``, is closed there, or ends where it ends if that is later
    (a trailing window kept past an explicit ``end_time``, as in Tonic). A window's end and the next
    one's start computed from the same offset give the same edge, so no event falls in both or in
    neither."""
    first = search_sorted(t, _edge_times(begin, start_offsets), False)
    last = search_sorted(t, _edge_times(begin, end_offsets), False)
    if end_offsets[-1] >= float(span_end - begin):  # closed at the span end, or later if it ends later
        closed = search_sorted(t, np.array([_whole_part(span_end)], dtype=np.int64), True)[0]
        last[-1] = max(last[-1], closed)
    return first, np.maximum(first, last)


def _exact(value) -> Fraction:
    """``value`` (a Python or numpy number) as an exact fraction, computed with Python integers (a
    numpy integer inside a Fraction would overflow silently)."""
    return Fraction(value.item() if isinstance(value, np.generic) else value)


def _window_count(span: float, window: float, stride: float, include_incomplete: bool) -> int:
    """How many windows of ``window`` every ``stride`` fit in ``span`` (at least one), exactly;
    ValueError when their index ranges alone would not fit in memory."""
    q = (_exact(span) - _exact(window)) / _exact(stride)
    n = max((math.ceil(q) if include_incomplete else math.floor(q)) + 1, 1)
    check_fits(n * SLICE_BYTES, f"slicing into {n} windows of {window} every {stride} (span {span})")
    return n


def _stride(name: str, window: float, overlap: float) -> float:
    """``window - overlap``, after checking that ``window`` (the argument ``name``) is a positive
    finite number and ``overlap`` lies in ``[0, window)``."""
    finite_number(name, window, above=0)
    finite_number("overlap", overlap)
    stride = window - overlap
    if overlap < 0 or stride <= 0:
        raise ValueError(f"overlap must be in [0, {name}), got overlap={overlap}, {name}={window}")
    return stride


def by_time_window(
    t: np.ndarray,
    time_window: float,
    overlap: float = 0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
) -> Slices:
    """Windows of ``time_window`` us starting every ``time_window - overlap`` us from the span start.

    Args:
        t: Timestamps in microseconds, sorted (int64).
        time_window: Window length in microseconds, > 0.
        overlap: Microseconds shared by consecutive windows, in ``[0, time_window)``.
        include_incomplete: Keep a trailing window the span does not fill (it then ends past the span).
        start_time: Start of the span in microseconds; None: the first timestamp.
        end_time: End of the span (closed) in microseconds; None: the last timestamp.

    Returns:
        ``(starts, ends)`` int64 index ranges into ``t``, one per frame.
    """
    stride = _stride("time_window", time_window, overlap)
    span = _span(t, start_time, end_time)
    if span is None:
        return _one_empty_slice()
    begin, end = span
    n = _window_count(end - begin, time_window, stride, include_incomplete)
    if overlap == 0:  # each window ends where the next starts: one offset for both
        edges = np.arange(n + 1, dtype=np.float64) * stride
        return _time_edges_to_indices(t, begin, edges[:-1], edges[1:], end)
    starts = np.arange(n, dtype=np.float64) * stride
    return _time_edges_to_indices(t, begin, starts, starts + time_window, end)


def by_event_count(
    n_events: int, event_count: int, overlap: int = 0, include_incomplete: bool = False
) -> Slices:
    """Slices of ``event_count`` events starting every ``event_count - overlap`` events (Tonic's rule).

    A recording with fewer than ``event_count`` events gives one slice holding all of them.

    Args:
        n_events: Number of events in the recording.
        event_count: Events per slice, > 0.
        overlap: Events shared by consecutive slices, in ``[0, event_count)``.
        include_incomplete: Keep a trailing slice with fewer than ``event_count`` events.

    Returns:
        ``(starts, ends)`` int64 event index ranges, one per slice.
    """
    event_count, overlap = whole_number("event_count", event_count), whole_number("overlap", overlap)
    stride = _stride("event_count", event_count, overlap)
    if n_events == 0:
        return _one_empty_slice()
    count = min(event_count, n_events)
    n = _window_count(n_events, count, stride, include_incomplete)
    starts = np.arange(n, dtype=np.int64) * stride
    return starts, np.minimum(starts + count, n_events)


def _check_bins(name: str, n_bins: int, overlap: float) -> None:
    """Check that ``n_bins`` (the argument ``name``) is a positive whole number and ``overlap`` a fraction in [0, 1)."""
    if whole_number(name, n_bins) < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_bins}")
    check_fits(n_bins * SLICE_BYTES, f"{name}={n_bins} bins")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap for a fixed number of bins is a fraction in [0, 1), got {overlap}")


def by_time_bins(
    t: np.ndarray,
    n_time_bins: int,
    overlap: float = 0,
    start_time: float | None = None,
    end_time: float | None = None,
) -> Slices:
    """``n_time_bins`` bins of width ``span / n`` (enlarged by ``overlap``, Tonic's rule), last one closed.

    With ``overlap=f`` each bin is ``(1 + f)`` base widths long and starts ``(1 - f)`` bin lengths
    after the previous one, as in Tonic; the last bin always reaches the span end.

    Args:
        t: Timestamps in microseconds, sorted (int64).
        n_time_bins: Number of bins, a positive integer.
        overlap: Fraction of a bin in [0, 1).
        start_time: Start of the span in microseconds; None: the first timestamp.
        end_time: End of the span (closed) in microseconds; None: the last timestamp.

    Returns:
        ``(starts, ends)`` int64 index ranges into ``t``, one per frame.
    """
    _check_bins("n_time_bins", n_time_bins, overlap)
    span = _span(t, start_time, end_time)
    if span is None:
        return _one_empty_slice(n_time_bins)
    begin, end = span
    k = np.arange(n_time_bins, dtype=np.float64)
    duration = float(end - begin)
    if overlap == 0:
        starts = (k * duration) / n_time_bins  # exact whenever the edge is an integer
        ends = np.append(starts[1:], duration)
    else:
        window = duration / n_time_bins * (1 + overlap)
        starts = k * window * (1 - overlap)
        ends = starts + window
    ends[-1] = max(ends[-1], duration)
    return _time_edges_to_indices(t, begin, starts, ends, end)


def by_event_bins(n_events: int, n_event_bins: int, overlap: float = 0) -> Slices:
    """``n_event_bins`` bins of ``n // bins * (1 + overlap)`` events (Tonic's rule); the last bin
    also takes the remainder, as SpikingJelly's ``split_by='number'`` does.

    Args:
        n_events: Number of events in the recording.
        n_event_bins: Number of bins, a positive integer.
        overlap: Fraction of a bin in [0, 1).

    Returns:
        ``(starts, ends)`` int64 event index ranges, one per bin.
    """
    _check_bins("n_event_bins", n_event_bins, overlap)
    count = int(n_events // n_event_bins * (1 + overlap))
    stride = int(count * (1 - overlap))
    starts = np.arange(n_event_bins, dtype=np.int64) * stride
    ends = np.minimum(starts + count, n_events)
    ends[-1] = n_events
    return np.minimum(starts, n_events), ends


def by_frames_number(t: np.ndarray, frames_number: int, split_by: str) -> Slices:
    """SpikingJelly's ``integrate_events_by_fixed_frames_number`` split.

    ``'number'``: ``N // frames`` events per frame, the remainder in the last one.
    ``'time'``: frames ``dt = (t_last - t_first) // frames`` us long from ``t_first``, the last one
    running to the end. Unlike SpikingJelly, empty frames are allowed instead of raising IndexError.

    Args:
        t: Timestamps in microseconds, sorted (int64).
        frames_number: Number of frames, a positive integer.
        split_by: ``'number'`` or ``'time'``.

    Returns:
        ``(starts, ends)`` int64 index ranges into ``t``, one per frame.
    """
    if split_by == "number":
        return by_event_bins(len(t), frames_number)
    if split_by != "time":
        raise ValueError(f"split_by must be 'number' or 'time', got {split_by!r}")
    _check_bins("frames_number", frames_number, 0)
    if len(t) == 0:
        return _one_empty_slice(frames_number)
    dt = (int(t[-1]) - int(t[0])) // frames_number
    edges = int(t[0]) + dt * np.arange(frames_number, dtype=np.int64)
    starts = search_sorted(t, edges, False)
    ends = np.append(starts[1:], len(t))
    return starts, ends


def slice_events(
    t: np.ndarray,
    *,
    time_window: float | None = None,
    event_count: int | None = None,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    frames_number: int | None = None,
    split_by: str | None = None,
    duration: float | None = None,
    overlap: float = 0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
) -> Slices:
    """Dispatch to exactly one slicing rule (Tonic's four, SpikingJelly's two, or a fixed duration).

    Args:
        t: Timestamps in microseconds, sorted (int64).
        time_window: Windows of this many microseconds (:func:`by_time_window`).
        event_count: Slices of this many events (:func:`by_event_count`).
        n_time_bins: This many bins of equal duration (:func:`by_time_bins`).
        n_event_bins: This many bins of equal event counts (:func:`by_event_bins`).
        frames_number: This many frames split by ``split_by`` (:func:`by_frames_number`).
        split_by: ``'number'`` (default) or ``'time'``, only with ``frames_number``.
        duration: Windows of this many microseconds without overlap, the last one kept even if incomplete.
        overlap: In microseconds (``time_window``), events (``event_count``) or a fraction of a bin (the bin rules).
        include_incomplete: With ``time_window`` or ``event_count``: keep the trailing partial window.
        start_time: Start of the span in microseconds (time rules); None: the first timestamp.
        end_time: End of the span in microseconds (time rules); None: the last timestamp.

    Returns:
        ``(starts, ends)`` int64 index ranges into ``t``, one per frame.

    Raises:
        ValueError: Not exactly one rule is given, or its arguments are out of range.
    """
    chosen = {
        "time_window": time_window,
        "event_count": event_count,
        "n_time_bins": n_time_bins,
        "n_event_bins": n_event_bins,
        "frames_number": frames_number,
        "duration": duration,
    }
    given = [name for name, value in chosen.items() if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(chosen)}; got {given or 'none'}")
    if split_by is not None and frames_number is None:
        raise ValueError("split_by goes with frames_number (SpikingJelly's fixed number of frames)")
    if overlap and (frames_number is not None or duration is not None):
        raise ValueError("overlap applies to time_window, event_count, n_time_bins and n_event_bins only")
    if time_window is not None:
        return by_time_window(t, time_window, overlap, include_incomplete, start_time, end_time)
    if duration is not None:
        return by_time_window(t, duration, 0, True, start_time, end_time)
    if event_count is not None:
        return by_event_count(len(t), event_count, overlap, include_incomplete)
    if n_time_bins is not None:
        return by_time_bins(t, n_time_bins, overlap, start_time, end_time)
    if n_event_bins is not None:
        return by_event_bins(len(t), n_event_bins, overlap)
    return by_frames_number(t, frames_number, split_by or "number")
