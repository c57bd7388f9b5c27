"""Name -> builder registry of the model zoo."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

__all__ = ["register", "build", "available"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a builder function available as ``build(name, ...)``."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return add


def available() -> list[str]:
    """Names accepted by :func:`build`, sorted."""
    return sorted(_BUILDERS)


def build(name: str, **overrides) -> nn.Module:
    """Build zoo model ``name`` with its defaults, any of which ``overrides`` replaces.

    ``dataset="dvs128"|"nmnist"|"cifar10dvs"`` sets input channels, size and classes; the
    builder's docstring (``help(snn.models.builder(name))``) lists the other options.
    """
    make = builder(name)
    try:
        return make(**overrides)
    except TypeError as exc:  # a misspelt option: say which model and what it accepts
        accepted = ", ".join(options(name))
        raise TypeError(
            f"{name}: {exc}; model options: {accepted}, plus the neuron's keyword arguments"
        ) from exc


def builder(name: str) -> Callable[..., nn.Module]:
    """The builder function registered as ``name``."""
    try:
        return _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def options(name: str) -> dict[str, object]:
    """The named options of model ``name`` with their defaults (neuron options come on top)."""
    params = inspect.signature(builder(name)).parameters.values()
    return {
        p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    }
