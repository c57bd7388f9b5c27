"""Keep torch.compile out of the Numba kernels without importing Dynamo at ``import snn``.

``torch.compiler.disable`` imports ``torch._dynamo`` (and with it sympy and triton) the moment it
decorates a function, which made ``import snn`` pay for a compiler most programs never start.
Dynamo is imported by anything that compiles, so a function only needs hiding from it once
``torch._dynamo`` is in ``sys.modules``; until then the plain function runs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def opaque_to_dynamo(fn: F) -> F:
    """Return ``fn`` wrapped so that Dynamo never traces into it (it graph-breaks at the call).

    Args:
        fn: the function to hide, typically one that calls Numba kernels Dynamo cannot trace.

    Returns:
        A function with ``fn``'s signature and docstring; ``torch.compiler.disable(fn)`` is built
        on the first call made after ``torch._dynamo`` has been imported.
    """
    disabled: Callable | None = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal disabled
        if "torch._dynamo" not in sys.modules:
            return fn(*args, **kwargs)
        if disabled is None:
            disabled = torch.compiler.disable(fn)
        return disabled(*args, **kwargs)

    return call  # type: ignore[return-value]
