"""Public names of a package imported on first use (PEP 562): its modules, and what they import
(Numba, zarr, torch), load only when a caller touches a name that needs them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(namespace: dict[str, Any], names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the package whose globals are ``namespace``.

    Args:
        namespace: The package's ``globals()``; a name is kept there once imported.
        names: Each public name to the module (relative to the package) that defines it.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        """Import a public name's module on first use and keep the name."""
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
