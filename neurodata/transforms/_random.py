"""Seeding for random transforms: reproducible, picklable and distinct in DataLoader workers.

``seed`` may be an int, ``None`` or a ``numpy.random.Generator``:

* int: the transform's draws are reproducible; two transforms with the same seed draw the same.
* None: fresh OS entropy.
* Generator: used as is (shared with the caller; a DataLoader worker gets a copy of its state).

For an int or None, the generator is created on first use in each process. Inside a PyTorch
DataLoader worker the worker's seed is mixed in, so workers draw differently from each other and
from epoch to epoch, yet reproducibly under ``torch.manual_seed``. Pickling drops the live
generator: an unpickled copy starts again from ``seed``.
"""

from __future__ import annotations

import os

import numpy as np

Seed = int | np.random.Generator | None


def _worker_seed() -> int | None:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:  # torch is optional for the transforms
        return None
    info = get_worker_info()
    return None if info is None else int(info.seed)


def make_generator(seed: Seed) -> np.random.Generator:
    """The generator a transform uses in this process (see the module docstring)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (int(seed) != seed or seed < 0):
        raise ValueError(f"seed must be a non-negative int, a numpy Generator or None; got {seed!r}")
    entropy = [int(seed)] if seed is not None else []
    worker = _worker_seed()
    if worker is not None:
        entropy.append(worker)
    return np.random.default_rng(np.random.SeedSequence(entropy) if entropy else None)


class RandomMixin:
    """Gives a dataclass with a ``seed`` field a per-process ``rng`` and generator-free pickling."""

    seed: Seed

    @property
    def rng(self) -> np.random.Generator:
        state = self.__dict__.get("_rng")
        if state is None or state[0] != os.getpid():
            state = (os.getpid(), make_generator(self.seed))
            self.__dict__["_rng"] = state
        return state[1]

    def __getstate__(self):
        state = dict(self.__dict__)
        if not isinstance(self.seed, np.random.Generator):
            state.pop("_rng", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def sample(value, rng: np.random.Generator, integer: bool = False):
    """A scalar as is, or a draw from ``[low, high)`` when given a ``(low, high)`` tuple or list."""
    if isinstance(value, (tuple, list)):
        low, high = value
        if integer:
            return int(rng.integers(int(low), int(high))) if high > low else int(low)
        return float(rng.uniform(low, high))
    return value
