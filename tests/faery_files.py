"""Event Stream files written by faery (an independent writer), shared by tests and benchmarks."""

from __future__ import annotations

import numpy as np


def write_faery_atis(path, events: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Write ``events`` (y = 0 at the top) as an ATIS Event Stream with faery's encoder, every other
    event turned into an exposure measurement (which readers skip); returns the events a reader
    should give back (the even-numbered ones).

    Parameters
    ----------
    path: the output file.
    events: time-ordered events in :data:`~neurodata.events.EVENT_DTYPE`.
    size: the sensor's (width, height).
    """
    from faery import es

    atis = np.zeros(len(events), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("exposure", "?"), ("polarity", "?")])
    atis["t"], atis["x"] = events["t"], events["x"]
    atis["y"] = size[1] - 1 - events["y"]  # faery's encoder takes the file's bottom-up y
    atis["polarity"] = events["p"] == 1
    atis["exposure"][1::2] = True
    with es.Encoder(path, "atis", False, size) as encoder:
        encoder.write(atis)
    return events[0::2]
