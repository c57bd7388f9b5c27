"""SpikingJelly's AEDAT loader functions, run verbatim without importing ``spikingjelly.datasets``.

That package imports torchvision and torchaudio at import time (not installed in the benchmark
environment: PyPI only has CUDA builds of them, which do not load against the CPU torch there), yet
its AEDAT loaders only use numpy and struct. We therefore compile just the named functions (and
module-level constants) from SpikingJelly's installed source files. Returns None when SpikingJelly
is not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import struct
from pathlib import Path
from typing import Union

import numpy as np


def _constant_assignment(node: ast.stmt) -> bool:
    if not isinstance(node, ast.Assign):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def spikingjelly_functions(module: str, names: tuple[str, ...]) -> dict | None:
    """The functions ``names`` from ``spikingjelly/datasets/<module>.py``, or None without SpikingJelly."""
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name in names) or _constant_assignment(node)
    ]
    namespace = {
        "np": np,
        "struct": struct,
        "Union": Union,
        "Path": Path,
        "logger": logging.getLogger("spikingjelly"),
    }
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return {name: namespace[name] for name in names}
