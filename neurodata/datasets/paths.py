"""Where datasets live: ``--root``, else ``$NEURODATA_HOME``, else the user cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def default_root() -> Path:
    """``$NEURODATA_HOME`` when set, else ``$XDG_CACHE_HOME/neurodata`` (``~/.cache/neurodata``)."""
    home = os.environ.get("NEURODATA_HOME")
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "neurodata"


def cache_name(dataset: str, options: dict[str, str], defaults: dict[str, str]) -> str:
    """The cache folder name: the dataset name, plus ``-key=value`` for each non-default option."""
    suffix = "".join(f"-{k}={v}" for k, v in sorted(options.items()) if defaults.get(k) != v)
    return f"{dataset}{suffix}.zarr"
