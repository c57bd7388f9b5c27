"""Mutations of valid files for fuzz tests: bit flips, truncations and splices."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from neurodata.events import EVENT_DTYPE


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, a, b in ops:
        if not buf:
            break
        a, b = a % len(buf), b % len(buf)
        if op == "flip":
            buf[a] ^= 1 << (b % 8)
        elif op == "truncate":
            del buf[a:]
        else:  # splice: copy a run of bytes from one place over another
            run = buf[a : a + 1 + b % 64]
            buf[b : b + len(run)] = run
    return bytes(buf)


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "truncate", "splice"]), st.integers(0, 1 << 20), st.integers(0, 1 << 20)
    ),
    min_size=1,
    max_size=6,
)


def assert_format_invariants(
    events: np.ndarray, width: int | None, height: int | None, max_events: int | None = None
) -> None:
    """What every successful decode guarantees, whatever bytes it was given.

    Parameters
    ----------
    events:
        The decoded events (all blocks concatenated).
    width, height:
        The sensor geometry the decoder knew (from the header, the format or the dataset), or None.
    max_events:
        An upper bound the bytes consumed put on the count (bytes / the smallest bytes per event), or None.
    """
    assert events.dtype == EVENT_DTYPE
    if len(events) == 0:
        return
    assert events["x"].min() >= 0 and events["y"].min() >= 0
    if width is not None:
        assert events["x"].max() < width, f"x {events['x'].max()} on a {width}-wide sensor"
    if height is not None:
        assert events["y"].max() < height, f"y {events['y'].max()} on a {height}-high sensor"
    assert set(np.unique(events["p"]).tolist()) <= {0, 1}, "polarities outside {0, 1}"
    if max_events is not None:
        assert len(events) <= max_events, f"{len(events)} events from bytes that hold at most {max_events}"
