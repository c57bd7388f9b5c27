"""The event model: building event arrays from columns."""

from __future__ import annotations

import re

import numpy as np
import pytest

import neurodata as nd


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"t": [0, np.nan]}, "column 't': value nan at index 1 is not a whole number"),
        ({"t": [0, 1.7]}, "column 't': value 1.7 at index 1 is not a whole number"),
        ({"t": [0, 1e19]}, "column 't': value 1e+19 at index 1 is not a whole number in"),
        ({"x": np.array([0, -1])}, "column 'x': value -1 at index 1 is not a whole number in 0..65535 (uint16)"),
        ({"y": [70_000, 0]}, "column 'y': value 70000 at index 0 is not a whole number in 0..65535"),
        ({"p": [1, 256]}, "column 'p': value 256 at index 1 is not a whole number in 0..255 (uint8)"),
        ({"t": ["a", "b"]}, "column 't' holds <U1 values, not numbers"),
        ({"x": [0]}, "column 'x' has 1 values, expected 2 like 't'"),
    ],
)
def test_values_a_field_cannot_hold_are_refused_by_column_and_index(columns, message):
    """They were truncated (1.7 -> 1), wrapped (-1 -> 65535) or turned into garbage (NaN) with at most
    a RuntimeWarning."""
    given = {"t": [0, 1], "x": [0, 1], "y": [0, 1], "p": [0, 1]} | columns
    with pytest.raises(ValueError, match=re.escape(message)):
        nd.make_events(**given)


def test_whole_floats_booleans_and_fitting_integers_are_taken():
    events = nd.make_events([1.0, 2.0], np.array([3, 65535], np.int64), np.array([5, 6], np.uint8), [True, False])
    assert events.tolist() == [(1, 3, 5, 1), (2, 65535, 6, 0)]
    assert len(nd.make_events([], [], [], [])) == 0
