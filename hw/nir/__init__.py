"""NIR (the Neuromorphic Intermediate Representation) export and import of :mod:`snn` models.

    graph = hw.nir.to_nir(model, (2, 34, 34), dt=1e-4)   # a nir.NIRGraph
    nir.write("model.nir", graph)
    net = hw.nir.from_nir("model.nir", dt=1e-4)          # [T, B, 2, 34, 34] -> per-step outputs

The discrete mapping (forward Euler at ``dt``), the threshold rule and the metadata for what NIR
cannot say are in :mod:`hw.nir.neurons` and ``docs/sections/hw-nir.md``. Needs the optional
``nir`` package (``pip install 'neurodata[nir]'``).
"""

try:
    from .errors import NIRError
    from .export import to_nir
    from .importer import NIRModule, from_nir
    from .save import save
except ModuleNotFoundError as exc:  # nir is an optional dependency (the "nir" extra)
    if exc.name != "nir":
        raise
    raise ImportError("hw.nir needs the nir package: pip install 'neurodata[nir]'") from exc

__all__ = ["to_nir", "from_nir", "save", "NIRModule", "NIRError"]
