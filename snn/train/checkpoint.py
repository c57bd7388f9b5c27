"""Checkpoints: atomic writes, exact resume, best-model export; everything loads with ``weights_only=True``.

A checkpoint holds only tensors and plain Python values (dicts, lists, numbers, strings), so
``torch.load(weights_only=True)`` reads it without unpickling arbitrary objects. The random
number generator states are converted accordingly: Python's Mersenne-Twister state and NumPy's
become int64 tensors plus plain numbers.

Writes check first that the tensors' bytes are free on the disk; a full disk, foreseen or met, is
one :class:`~neurodata.diskspace.DiskFullError` naming the checkpoint, and the previous file stays.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurodata.localfs import atomic_output, write_atomic

LAST = "last.pt"
BEST = "best.pt"
BEST_META = "best.json"


def capture_rng(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (CPU and every CUDA device),
    and of ``loader_generator``, the training loader's own ``generator=``, when it has one (it then
    draws the shuffles)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }


def restore_rng(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng`: set the generators from ``state`` (and ``loader_generator``
    from its saved state, when both are present)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and state.get("loader") is not None:
        loader_generator.set_state(state["loader"])


def tensor_bytes(obj: Any) -> int:
    """The bytes of the tensors in ``obj`` (nested dicts, lists and tuples): about what
    ``torch.save`` writes for a checkpoint, whose other values are small."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to a temporary file in the same folder (created when missing), synced,
    then renamed over ``path``; fails before writing when the tensors' bytes are not free."""
    with atomic_output(path, parents=True, size=tensor_bytes(obj)) as f:
        torch.save(obj, f)


def atomic_write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename; the folder is created when
    missing)."""
    write_atomic(path, text, durable=False, parents=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the trainer (safe: ``weights_only=True``).

    Args:
        path: A ``last.pt`` or per-epoch checkpoint in a run folder.
        map_location: Where the tensors go, as for ``torch.load``.

    Returns:
        The checkpoint's dict: the model's and optimizer's state dicts, epoch, metrics, random
        generator states and the config.
    """
    return torch.load(path, map_location=map_location, weights_only=True)


def export_best(run_dir: Path, model_state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``run_dir``'s ``best.pt`` (``model_state``, the model's state dict) and ``best.json``
    (``meta``: config, epoch, metrics)."""
    atomic_save(model_state, run_dir / BEST)
    atomic_write_text(json.dumps(meta, indent=2, default=float) + "\n", run_dir / BEST_META)


def load_best(model: torch.nn.Module, run_dir: str | os.PathLike) -> dict[str, Any]:
    """Load ``run_dir``'s best weights into ``model``; returns the ``best.json`` metadata."""
    run_dir = Path(run_dir)
    state = torch.load(run_dir / BEST, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return json.loads((run_dir / BEST_META).read_text())
