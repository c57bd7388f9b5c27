"""Dense and sparse representations of event streams (frames, voxel grids, time surfaces).

Inputs are structured arrays with fields t, x, y, p (:data:`neurodata.events.EVENT_DTYPE` or any
array :func:`neurodata.events.as_events` accepts, e.g. Tonic's). Sensor size is Tonic-style
``(width, height, polarities)``; ``polarities = 1`` merges ON and OFF into one channel.

Semantics, stated once and tested:

* Events are used in time order; an unsorted input is stably sorted first. Coordinates outside the
  sensor raise ``ValueError`` naming the event and field.
* The recording spans the closed interval ``[t_first, t_last]`` (or ``[start_time, end_time]``).
  Bins are half-open ``[start, end)``; the last bin is closed at the span end, so the event at
  ``t_last`` belongs to the last bin.
* No event is silently dropped. The one exception is asked for by name: ``include_incomplete=False``
  (the default, as in Tonic) with ``time_window``/``event_count`` leaves out the trailing
  remainder that does not fill a whole window.
* Frames are ``[T, P, H, W]`` int32 counts (a wider type than Tonic's wrapping int16; an integer
  ``dtype`` too narrow for the counts raises, a float ``dtype`` converts).
* Empty inputs give zeros of the normal shape ``[T, P, H, W]``: ``T = 1`` for ``time_window``,
  ``event_count`` and ``duration``, ``T = n`` for a fixed number of bins.

The compute kernels live in :mod:`.kernels` (Numba), with readable numpy twins in
:mod:`.reference`; :mod:`.torch_ops` batches fixed-bin frames and voxel grids on any torch device.
"""

from .binarep import to_bina_rep
from .frames import to_frame, to_image, to_sparse_frame
from .key import RULES_VERSION, representation_key
from .slicing import slice_events
from .surfaces import to_averaged_time_surface, to_local_time_surfaces, to_time_surface
from .voxel import to_voxel_grid

__all__ = [
    "RULES_VERSION",
    "representation_key",
    "slice_events",
    "to_bina_rep",
    "to_averaged_time_surface",
    "to_frame",
    "to_image",
    "to_local_time_surfaces",
    "to_sparse_frame",
    "to_time_surface",
    "to_voxel_grid",
]
