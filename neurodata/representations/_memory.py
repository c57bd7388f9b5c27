"""Outputs too big for this machine are refused before they are allocated.

A lazily allocated array of more than the machine's memory is granted, then filled until the
operating system kills the process (a DataLoader worker, a CI job) with no message; one that
passes the address space raises numpy's MemoryError, which names no parameter.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..diskspace import size_text


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(nbytes: float, what: str) -> None:
    """Raise ValueError when ``nbytes`` is more than this machine's memory.

    Args:
        nbytes: The bytes an output would take.
        what: The output and what sized it, for the message (e.g. ``"frames for time_window=1"``).
    """
    memory = physical_memory()
    if memory is not None and nbytes > memory:
        raise ValueError(f"{what} would take {size_text(nbytes)}, more than this machine's {size_text(memory)} of memory")


def zeros(shape: tuple[int, ...], dtype, what: str) -> np.ndarray:
    """``np.zeros(shape, dtype)`` after :func:`check_fits`.

    Args:
        shape: The array's shape.
        dtype: Its numpy dtype.
        what: The output, for the message.
    """
    check_fits(math.prod(shape) * np.dtype(dtype).itemsize, f"{what} {tuple(shape)} of {np.dtype(dtype)}")
    return np.zeros(shape, dtype=dtype)
