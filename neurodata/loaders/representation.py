"""Turning a loader's ``representation`` argument into a callable, and describing it for the cache.

``representation`` may be

* a transform object from :mod:`neurodata.transforms` (``ToFrame(None, n_time_bins=16)``); a
  ``sensor_size`` of None is filled in from the cache's ``sensor_size`` attribute;
* a spec dict ``{"type": "frame", "n_time_bins": 16}`` naming one of :data:`SPEC_TYPES`
  (``sensor_size`` defaults to the cache's);
* any other callable ``events -> array``, used as is (it has no spec, so it is never precomputed).

Only representations with a spec can be precomputed and found again: their key is
:func:`neurodata.representations.representation_key` of the spec, so any changed parameter
names another array and stale frames are never served.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

# spec "type" -> class name in neurodata.transforms
SPEC_TYPES = {
    "frame": "ToFrame",
    "sparse_frame": "ToSparseTensor",
    "image": "ToImage",
    "voxel_grid": "ToVoxelGrid",
    "time_surface": "ToTimesurface",
    "averaged_time_surface": "ToAveragedTimesurface",
}


def _transform_class(kind: str) -> type:
    from .. import transforms

    for cls_name in SPEC_TYPES.values():
        cls = getattr(transforms, cls_name)
        if getattr(cls, "kind", None) == kind:
            return cls
    raise ValueError(f"unknown representation type {kind!r}; known types: {sorted(SPEC_TYPES)}")


def resolve_representation(representation: Any, sensor_size: tuple[int, int, int] | None) -> Callable | None:
    """The callable to apply to each sample's events for ``representation`` (see the module
    docstring), with ``sensor_size`` filled in where it lacks one; None stays None."""
    if representation is None:
        return None
    if isinstance(representation, dict):
        spec = dict(representation)
        kind = spec.pop("type", None)
        if not isinstance(kind, str):
            raise ValueError(f"representation spec {representation!r} needs a string 'type'")
        representation = _transform_class(kind)(**{"sensor_size": None, **spec})
    if dataclasses.is_dataclass(representation) and getattr(representation, "sensor_size", 0) is None:
        if sensor_size is None:
            raise ValueError(
                f"{type(representation).__name__} has no sensor_size and the cache records none; pass one"
            )
        representation = dataclasses.replace(representation, sensor_size=tuple(sensor_size))
    if not callable(representation):
        raise TypeError(
            f"representation must be callable or a spec dict, got {type(representation).__name__}"
        )
    return representation


def representation_spec(representation: Callable | None) -> dict | None:
    """The spec dict of a resolved representation, or None for plain callables."""
    spec = getattr(representation, "spec", None)
    return spec() if callable(spec) else None


def spec_key(spec: dict) -> str:
    """The precomputed-array key of a spec (``frame-<24 hex>``)."""
    from ..representations import representation_key

    return representation_key(spec)
