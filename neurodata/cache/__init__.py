"""The dataset cache: one Zarr v3 store per dataset, written in parallel parts, read for streaming."""

from .errors import CacheError
from .reader import CacheReader, SplitReader, open_cache
from .verify import VerifyReport, cache_info, verify_cache
from .writer import CacheBuilder, PartData, PartDone, build_cache

__all__ = [
    "CacheBuilder",
    "CacheError",
    "CacheReader",
    "PartData",
    "PartDone",
    "SplitReader",
    "VerifyReport",
    "build_cache",
    "cache_info",
    "open_cache",
    "verify_cache",
]
