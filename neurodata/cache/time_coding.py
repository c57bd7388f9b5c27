"""Which time coding a cache gets from its parts' value ranges, and the dtype of each column it stores.

:mod:`.codecs` owns the codings themselves, both directions (``stored_columns`` for the writer,
``decoder_columns`` and the kernels' references for the readers); this module only chooses, since it
needs :mod:`.layout`'s narrowing, which imports :mod:`.codecs`."""

from __future__ import annotations

import numpy as np

from .codecs import DELTA, DELTA_POLARITY, packed_range, polarity_packs, stored_fields
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

