"""The writer's side of the time coding (:mod:`.codecs` holds the codings themselves): which coding a
cache gets from its parts' value ranges, the dtype of each column it stores, and the stored columns."""

from __future__ import annotations

import numpy as np

from .codecs import DELTA, DELTA_POLARITY, pack_polarity, packed_range, polarity_packs, stored_fields
from .layout import narrowest_dtypes
from .narrowing import ValueRange


def stored_dtypes(
    ranges: list[dict[str, ValueRange]], pack_polarities: bool = True
) -> tuple[str, dict[str, np.dtype]]:
    """The time coding of a cache whose parts hold the value ranges ``ranges`` (polarities in the
    times where asked and every part allows it, see :mod:`.codecs`) and the stored dtype of each
    column it stores.

    Parameters:
        ranges: one dict per staged part, event field -> ``[min, max]`` of its staged (time coded) column.
        pack_polarities: False keeps a ``p`` column even where the polarities could ride in the times.
    """
    packs = pack_polarities and all(polarity_packs(r["t"], r["p"]) for r in ranges)
    time_coding = DELTA_POLARITY if packs else DELTA
    if time_coding == DELTA_POLARITY:
        ranges = [{**r, "t": packed_range(r["t"])} for r in ranges]
    dtypes = narrowest_dtypes(ranges)
    return time_coding, {name: dtypes[name] for name in stored_fields(time_coding)}


def stored_columns(columns: dict[str, np.ndarray], time_coding: str) -> dict[str, np.ndarray]:
    """Staged columns (coded times, x, y, p) -> the columns a cache of ``time_coding`` stores."""
    if time_coding == DELTA_POLARITY:
        return {"t": pack_polarity(columns["t"], columns["p"]), "x": columns["x"], "y": columns["y"]}
    return columns
