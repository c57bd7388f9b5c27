"""Surrogate spike functions: Heaviside forward, a smooth stand-in derivative backward.

Every surrogate spikes when its input (``H - V_th``) is ``>= 0`` and, in the backward pass, uses
exactly SpikingJelly 2.0's derivative formula (``spikingjelly.activation_based.surrogate``), with
the same default ``alpha``. Each instance carries a stable lowercase ``name`` and a float
``alpha``; the fused backends dispatch on that pair instead of the Python object, and their
compiled copies of the formulas (Numba, Triton) are tested against :func:`surrogate_grad`, the
one reference.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "SurrogateFunction",
    "Sigmoid",
    "ATan",
    "PiecewiseQuadratic",
    "PiecewiseExp",
    "SoftSign",
    "SuperSpike",
    "Erf",
    "Rect",
    "NAMES",
    "by_name",
    "surrogate_grad",
]


def surrogate_grad(name: str, x: torch.Tensor, alpha: float) -> torch.Tensor:
    """The surrogate derivative ``g'(x)`` of surrogate ``name`` with sharpness ``alpha`` (pure tensor
    ops, compile friendly)."""
    if name == "sigmoid":
        s = torch.sigmoid(x * alpha)
        return (1.0 - s) * s * alpha
    if name == "atan":
        a = alpha / 2
        ax = (math.pi * a) * x
        return a / (1 + ax * ax)
    if name == "piecewise_quadratic":
        x_abs = x.abs()
        return (-(alpha**2) * x_abs + alpha).masked_fill(x_abs > (1 / alpha), 0.0)
    if name == "piecewise_exp":
        return alpha / 2 * torch.exp(-alpha * x.abs())
    if name == "soft_sign":
        return 1.0 / (2 * alpha * (1 / alpha + x.abs()) ** 2)
    if name == "super_spike":
        return alpha / (x.abs() + 1.0) ** 2
    if name == "erf":
        return torch.exp(-((x * alpha) ** 2)) * (alpha / math.sqrt(math.pi))
    if name == "rect":
        return alpha * (x.abs() < 0.5 / alpha).to(x.dtype)
    raise ValueError(f"unknown surrogate {name!r}; expected one of {sorted(_REGISTRY)}")


class _HeavisideSurrogate(torch.autograd.Function):
    """``x >= 0`` forward; ``grad * g'(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_grad(ctx.name, x, ctx.alpha), None, None


class SurrogateFunction:
    """Base class: call it on ``H - V_th`` to get spikes with a surrogate gradient.

    ``alpha`` is a plain attribute and may be changed after construction.
    """

    name: str = ""
    default_alpha: float = 1.0

    def __init__(self, alpha: float | None = None) -> None:
        self.alpha = float(self.default_alpha if alpha is None else alpha)
        if not self.alpha > 0:
            raise ValueError(f"{type(self).__name__}: alpha must be > 0, got {alpha}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _HeavisideSurrogate.apply(x, self.name, float(self.alpha))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative evaluated at ``x``."""
        return surrogate_grad(self.name, x, float(self.alpha))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SurrogateFunction) and (self.name, self.alpha) == (other.name, other.alpha)

    def __hash__(self) -> int:
        return hash((self.name, self.alpha))


class Sigmoid(SurrogateFunction):
    """``g'(x) = a s (1 - s)``, ``s = sigmoid(a x)``; SpikingJelly's default surrogate."""

    name, default_alpha = "sigmoid", 4.0


class ATan(SurrogateFunction):
    """``g'(x) = (a/2) / (1 + (pi/2 a x)^2)``; our neurons' default surrogate."""

    name, default_alpha = "atan", 2.0


class PiecewiseQuadratic(SurrogateFunction):
    """``g'(x) = max(0, a - a^2 |x|)``."""

    name, default_alpha = "piecewise_quadratic", 1.0


class PiecewiseExp(SurrogateFunction):
    """``g'(x) = (a/2) exp(-a |x|)``."""

    name, default_alpha = "piecewise_exp", 1.0


class SoftSign(SurrogateFunction):
    """``g'(x) = 1 / (2a (1/a + |x|)^2)``."""

    name, default_alpha = "soft_sign", 2.0


class SuperSpike(SurrogateFunction):
    """``g'(x) = a / (1 + |x|)^2``."""

    name, default_alpha = "super_spike", 1.0


class Erf(SurrogateFunction):
    """``g'(x) = (a / sqrt(pi)) exp(-a^2 x^2)``."""

    name, default_alpha = "erf", 2.0


class Rect(SurrogateFunction):
    """``g'(x) = a * 1[|x| < 0.5/a]``."""

    name, default_alpha = "rect", 1.0


_REGISTRY: dict[str, type[SurrogateFunction]] = {
    cls.name: cls
    for cls in (Sigmoid, ATan, PiecewiseQuadratic, PiecewiseExp, SoftSign, SuperSpike, Erf, Rect)
}
# The built-in surrogates' names; their positions are the integer ids the fused kernels dispatch on.
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def by_name(name: str, alpha: float | None = None) -> SurrogateFunction:
    """Build a surrogate from its lowercase ``name`` (e.g. ``"atan"``) with sharpness ``alpha`` (None:
    the surrogate's default)."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; expected one of {sorted(_REGISTRY)}") from None
    return cls(alpha)
