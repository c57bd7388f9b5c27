"""A seeded validation part held out of a training set, so that model selection never looks at test data."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Holdout", "holdout"]


class Holdout(NamedTuple):
    """Indices of the samples kept for training (``train``) and of those held out for validation
    (``val``), sorted."""

    train: np.ndarray
    val: np.ndarray


def holdout(labels: np.ndarray, fraction: float, seed: int = 0) -> Holdout:
    """Hold out ``round(fraction * n)`` of ``n`` labelled samples for validation, stratified: the
    samples of each class are shuffled (seeded) and the validation part takes the same share of
    every class, to within one sample.

    Parameters
    ----------
    labels: the class of each sample (``[n]`` integers).
    fraction: the share held out, in (0, 1).
    seed: the shuffle's seed; the same labels, fraction and seed give the same split.

    Raises ValueError when the fraction is out of range or leaves either part empty.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    n_val = round(fraction * n)
    if not 0 < n_val < n:
        raise ValueError(
            f"a validation fraction of {fraction} of {n} training samples leaves "
            f"{'no validation' if n_val == 0 else 'no training'} sample"
        )
    rng = np.random.default_rng(seed)
    # each sample's rank within its class, as a share of the class: taking the smallest shares
    # first draws the classes in proportion; random tie-breaks mix the classes
    share = np.empty(n)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        share[members[rng.permutation(len(members))]] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.random(n), share))
    return Holdout(np.sort(order[n_val:]), np.sort(order[:n_val]))
