"""Integers stored narrower than they are computed: value ranges, the narrowest dtype holding a range,
and the checked cast.

The cache writer narrows each event column to the narrowest of its stored dtypes
(:func:`~.layout.narrowest_dtypes`); :mod:`neurodata.loaders.precompute` narrows integer
representations. Both record each piece's ``[min, max]`` as it is written and choose (or check) the
dtype from the ranges, so no value is ever wrapped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .errors import CacheError

ValueRange = list[int] | None
"""``[min, max]`` of an integer column as Python ints (JSON-ready); None for no values or non-integers."""


def value_range(column: np.ndarray) -> ValueRange:
    """``[min, max]`` of integer ``column``; None when it is empty or not of an integer dtype."""
    column = np.asarray(column)
    return [int(column.min()), int(column.max())] if column.dtype.kind in "iu" and column.size else None


def merge_ranges(ranges: Iterable[ValueRange]) -> ValueRange:
    """The range covering every given range (None entries add nothing; None when all are None).

    Args:
        ranges: ``[min, max]`` ranges or None.
    """
    known = [r for r in ranges if r is not None]
    return [min(r[0] for r in known), max(r[1] for r in known)] if known else None


def fits(values: ValueRange, dtype: np.dtype) -> bool:
    """Whether every value of ``values`` is representable in ``dtype`` (always for None or a non-integer dtype)."""
    dtype = np.dtype(dtype)
    if values is None or dtype.kind not in "iu":
        return True
    info = np.iinfo(dtype)
    return info.min <= values[0] and values[1] <= info.max


def narrowest(candidates: Sequence[np.dtype], values: ValueRange) -> np.dtype | None:
    """The first of ``candidates`` (narrowest first) holding ``values`` (None: holding 0); None when none does."""
    return next((d for d in candidates if fits(values or [0, 0], d)), None)


def narrowed(column: np.ndarray, dtype: np.dtype, where: str, name: str) -> np.ndarray:
    """``column`` as ``dtype``, or CacheError naming ``where`` and column ``name`` when a value does not
    fit (the ranges recorded for the staged parts were wrong)."""
    if column.dtype == dtype:
        return column
    require_fit(column, dtype, where, name)
    return column.astype(dtype)


def require_fit(column: np.ndarray, dtype: np.dtype, where: str, name: str) -> None:
    """CacheError naming ``where`` and column ``name`` when a value of ``column`` does not fit ``dtype``
    (the ranges recorded for the staged parts were wrong); for a caller that casts as it copies.

    Args:
        column: Integer values.
        dtype: The dtype they are to be stored as.
        where: The cache's URL.
        name: The column's field name.
    """
    if column.dtype != dtype and not fits(value_range(column), dtype):
        raise CacheError(
            f"{where}: event column {name!r} has values outside {dtype} although the staged parts' "
            "ranges said they fit; delete the .build folder and prepare again"
        )
