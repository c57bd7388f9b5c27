"""The numbers ``neurodata info CACHE --plot`` draws, computed from a cache and nothing else: samples per
class, events per sample (both per split, from the per-sample arrays alone) and where on the sensor the
events fell (one pass over every event), and the figure that shows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cache import CacheError, open_cache

BLOCK_SAMPLES = 256  # samples read per event read of the heat-map pass


@dataclass(frozen=True)
class CacheOverview:
    """A cache at a glance.

    Parameters:
        name: the dataset name.
        class_names: the class names, or None.
        class_counts: split -> int64 samples per label (index = label; at least one entry per class name).
        unlabelled: split -> samples with a negative ("no label") label, not in ``class_counts``.
        events_per_sample: split -> int64 events of each sample.
        heat: ``[H, W]`` int64 events per pixel over every split (row = y, as in :mod:`.render`).
    """

    name: str
    class_names: list[str] | None
    class_counts: dict[str, np.ndarray]
    unlabelled: dict[str, int]
    events_per_sample: dict[str, np.ndarray]
    heat: np.ndarray


def cache_overview(url: str, progress: Callable[[int], Any] | None = None) -> CacheOverview:
    """Count a cache's classes and events per sample, and accumulate its events into a heat map.

    Parameters:
        url: the cache (path or fsspec URL).
        progress: called with the number of samples each read covered (e.g. a tqdm ``update``).
    """
    cache = open_cache(url)
    size = cache.attrs.get("sensor_size")
    if not size:
        raise CacheError(f"{url}: the cache records no sensor_size, so its heat map has no shape")
    width, height = int(size[0]), int(size[1])
    heat = np.zeros(width * height, dtype=np.int64)
    n_classes = len(cache.class_names or [])
    counts, unlabelled, lengths = {}, {}, {}
    for split, reader in cache.splits.items():
        labels = reader.labels
        labelled = labels[labels >= 0]
        counts[split] = np.bincount(labelled, minlength=n_classes).astype(np.int64)
        unlabelled[split] = int(len(labels) - len(labelled))
        lengths[split] = np.diff(reader.offsets)
        for start in range(0, len(reader), BLOCK_SAMPLES):
            stop = min(start + BLOCK_SAMPLES, len(reader))
            events, _ = reader.events(start, stop)
            outside = (events["x"] >= width) | (events["y"] >= height)
            if outside.any():
                first = int(np.argmax(outside))
                raise CacheError(
                    f"{url}: split {split!r} samples {start}:{stop}: event {first} at "
                    f"({events['x'][first]}, {events['y'][first]}) lies outside the sensor {width}x{height}"
                )
            flat = events["y"].astype(np.int64) * width + events["x"]
            heat += np.bincount(flat, minlength=width * height)
            if progress is not None:
                progress(stop - start)
    return CacheOverview(
        cache.name, cache.class_names, counts, unlabelled, lengths, heat.reshape(height, width)
    )


def overview_figure(overview: CacheOverview) -> Any:
    """A matplotlib figure of three panels: samples per class (one bar group per split), a histogram of
    events per sample (one per split) and the heat map of event counts (``y = 0`` on top).

    Parameters:
        overview: what :func:`cache_overview` counted.
    """
    from .writers import pyplot

    plt = pyplot()
    fig, (bars, hist, heat) = plt.subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    splits = list(overview.class_counts)
    n_classes = max((len(c) for c in overview.class_counts.values()), default=0)
    width = 0.8 / max(len(splits), 1)
    for k, split in enumerate(splits):
        counts = overview.class_counts[split]
        bars.bar(np.arange(len(counts)) + k * width, counts, width=width, label=split)
    names = overview.class_names or [str(c) for c in range(n_classes)]
    bars.set_xticks(
        np.arange(n_classes) + width * (len(splits) - 1) / 2, names[:n_classes], rotation=60, fontsize="small"
    )
    bars.set(title="samples per class", ylabel="samples")
    bars.yaxis.get_major_locator().set_params(integer=True)
    for split in splits:
        lengths = overview.events_per_sample[split]
        if len(lengths):
            hist.hist(lengths, bins=40, alpha=0.6, label=split)
    hist.set(title="events per sample", xlabel="events", ylabel="samples")
    image = heat.imshow(overview.heat, interpolation="nearest", cmap="inferno")
    heat.set(title=f"events per pixel ({int(overview.heat.sum()):,} events)", xlabel="x", ylabel="y")
    fig.colorbar(image, ax=heat, shrink=0.8)
    for ax in (bars, hist):
        if splits:
            ax.legend(fontsize="small")
    fig.suptitle(overview.name)
    return fig
