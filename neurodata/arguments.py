"""Checks of numeric arguments, each failure one ValueError naming the argument."""

from __future__ import annotations

import math

import numpy as np


def finite_number(name: str, value):
    """``value`` when it is a real, finite number (not a bool); else ValueError naming ``name``.

    Args:
        name: The argument's name, for the message.
        value: The value given.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def whole_number(name: str, value) -> int:
    """``value`` as an int when it is a whole number (``2`` or ``2.0``, not a bool); else ValueError
    naming ``name``.

    Args:
        name: The argument's name, for the message.
        value: The value given.
    """
    try:
        whole = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or whole != value:
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return whole
