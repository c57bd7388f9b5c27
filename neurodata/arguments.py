"""Checks of numeric arguments, each failure one ValueError naming the argument."""

from __future__ import annotations

import math

import numpy as np


def finite_number(name: str, value, *, above: float | None = None, minimum: float | None = None):
    """``value`` when it is a real, finite number (not a bool) in range; else ValueError naming ``name``.

    Args:
        name: The argument's name, for the message.
        value: The value given.
        above: Values must be greater than this (0: "must be positive").
        minimum: Values must be at least this.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    _check_range(name, value, value, above, minimum)
    return value


def whole_number(name: str, value, *, minimum: int | None = None) -> int:
    """``value`` as an int when it is a whole number (``2`` or ``2.0``, not a bool) of at least
    ``minimum``; else ValueError naming ``name``.

    Args:
        name: The argument's name, for the message.
        value: The value given.
        minimum: The smallest value allowed (1: "must be positive").
    """
    try:
        whole = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or whole != value:
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    _check_range(name, whole, value, 0 if minimum == 1 else None, None if minimum == 1 else minimum)
    return whole


def _check_range(name: str, value, given, above, minimum) -> None:
    if above is not None and not value > above:
        raise ValueError(f"{name} must be {'positive' if above == 0 else f'> {above}'}, got {given}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {given}")
