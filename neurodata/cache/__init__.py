"""The dataset cache: one Zarr v3 store per dataset, written in parallel parts, read for streaming.

The public names import their modules (and zarr) on first use, so that a command reaches its own
work first: ``neurodata prepare`` lists the archive while a thread imports the writer.
"""

from .._lazy import lazy_names

_LAZY = {
    "CacheBuilder": ".writer",
    "CacheError": ".errors",
    "CacheReader": ".reader",
    "PartData": ".writer",
    "PartDone": ".writer",
    "SplitReader": ".reader",
    "VerifyReport": ".verify",
    "build_cache": ".writer",
    "cache_info": ".verify",
    "open_cache": ".reader",
    "verify_cache": ".verify",
}
__getattr__, __dir__ = lazy_names(globals(), _LAZY)
__all__ = sorted(_LAZY)
