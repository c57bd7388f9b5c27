"""Live classification: a stream framed into sliding windows as a representation spec describes,
run through a spiking network whose state carries from one window to the next.

The window spans ``duration`` microseconds in ``n_time_bins`` bins (the spec a ``neurodata train``
run records: ``{"type": "frame", "sensor_size": (W, H, P), "n_time_bins": T, "duration": D}``).
Windows slide by ``hop_us``, a whole number of bins: each hop frames only its new bins
(:func:`neurodata.representations.to_frame` over the hop, so a bin is exactly what framing the
window would give) and advances the network by those time steps from the state the previous hop
left; a window's prediction averages the network's outputs over its last ``T`` steps. The network
therefore never restarts from rest mid-stream, as a camera-side SNN would run.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from ..errors import NeurodataError
from ..events import concatenate, empty_events
from ..representations import to_frame


class Prediction(NamedTuple):
    """One window's class: its span ``[t_start, t_end)`` in microseconds, the winning class and
    the mean output per class over the window's time steps.

    Attributes:
        t_start: The window's first microsecond.
        t_end: The microsecond after its last.
        label: The winning class.
        scores: The mean output per class.
    """

    t_start: int
    t_end: int
    label: int
    scores: list[float]


class FrameSpec(NamedTuple):
    """The parts of a representation spec live framing needs.

    Attributes:
        sensor_size: ``(width, height, polarities)``.
        n_time_bins: Frames per window.
        duration: The window's length in microseconds (a multiple of ``n_time_bins``).
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int
    duration: int

    @classmethod
    def from_spec(cls, spec: dict) -> FrameSpec:
        """Check a spec dict (``type`` frame, ``sensor_size``, ``n_time_bins``, ``duration``)."""
        if spec.get("type") != "frame":
            raise NeurodataError(f"live inference frames events; the spec's type is {spec.get('type')!r}, not 'frame'")
        missing = [k for k in ("sensor_size", "n_time_bins", "duration") if spec.get(k) is None]
        if missing:
            raise NeurodataError(f"the representation spec lacks {', '.join(missing)} (window length in us and T bins)")
        bins, duration = int(spec["n_time_bins"]), int(spec["duration"])
        if bins <= 0 or duration <= 0 or duration % bins:
            raise NeurodataError(
                f"the window of {duration} us does not split into {bins} whole-microsecond bins"
            )
        return cls(tuple(int(v) for v in spec["sensor_size"]), bins, duration)

    @property
    def bin_us(self) -> int:
        """One frame's length in microseconds."""
        return self.duration // self.n_time_bins


@contextlib.contextmanager
def streaming(model):
    """Run ``model`` with stateful neurons and per-step outputs, restoring both afterwards."""
    from snn.neurons import Neuron

    neurons = [m for m in model.modules() if isinstance(m, Neuron)]
    saved = [(n, n.stateful) for n in neurons]
    readout = getattr(model, "readout", None)
    for neuron in neurons:
        neuron.stateful = True
        neuron.reset()
    if readout is not None:
        model.readout = "sequence"
    try:
        yield
    finally:
        for neuron, stateful in saved:
            neuron.stateful = stateful
            neuron.reset()
        if readout is not None:
            model.readout = readout


class StreamClassifier:
    """Feeds event blocks in time order; returns a :class:`Prediction` per completed window.

    Parameters:
        model: a time-major SNN (``[T, B, C, H, W]`` in; per-step ``[T, B, classes]`` out, as
            :class:`snn.models.common.SpikingClassifier` gives with ``readout="sequence"``), in eval mode.
        spec: the representation spec (see :class:`FrameSpec`).
        hop_us: the slide between windows, a multiple of the bin (default: the window, no overlap).
    Use inside :func:`streaming` (``classify`` does).
    """

    def __init__(self, model, spec: dict, hop_us: int | None = None):
        self.model = model
        self.spec = FrameSpec.from_spec(spec)
        self.hop_us = self.spec.duration if hop_us is None else int(hop_us)
        if self.hop_us <= 0 or self.hop_us % self.spec.bin_us:
            raise NeurodataError(f"--hop-us {hop_us} must be a positive multiple of the bin, {self.spec.bin_us} us")
        self.start: int | None = None  # the next hop's first microsecond
        self.pending: list[np.ndarray] = []
        self.outputs: collections.deque = collections.deque(maxlen=self.spec.n_time_bins)

    def push(self, events: np.ndarray) -> list[Prediction]:
        """Add events (later than all before); classify every window they complete."""
        if not len(events):
            return []
        if self.start is None:
            self.start = int(events["t"][0])
        self.pending.append(events)
        held = concatenate(self.pending)
        made = []
        while len(held) and int(held["t"][-1]) >= self.start + self.hop_us:
            end = self.start + self.hop_us
            cut = int(np.searchsorted(held["t"], end, side="left"))
            made += self._hop(held[:cut], end)
            held = held[cut:]
        self.pending = [held] if len(held) else []
        return made

    def _hop(self, events: np.ndarray, end: int) -> list[Prediction]:
        import torch

        steps = self.hop_us // self.spec.bin_us
        try:
            frames = to_frame(
                events if len(events) else empty_events(0),
                self.spec.sensor_size,
                n_time_bins=steps,
                start_time=self.start,
                end_time=end,
            )
        except ValueError as err:
            raise NeurodataError(f"framing the window ending at {end} us: {err}") from None
        with torch.no_grad():
            out = self.model(torch.from_numpy(frames).float().unsqueeze(1))  # [steps, 1, classes]
        self.outputs.extend(out[:, 0])
        self.start = end
        if len(self.outputs) < self.spec.n_time_bins:
            return []
        scores = torch.stack(list(self.outputs)).mean(0)
        return [Prediction(end - self.spec.duration, end, int(scores.argmax()), [float(s) for s in scores])]


def classify(chunks: Iterable[np.ndarray], model, spec: dict, hop_us: int | None = None) -> Iterator[Prediction]:
    """Classify a stream's sliding windows with ``model``, its state carried across windows.

    Parameters:
        chunks: event arrays in time order (``source.chunks()`` of a live source, a recording's chunks).
        model: the SNN (see :class:`StreamClassifier`); put it in eval mode first.
        spec: ``{"type": "frame", "sensor_size": (W, H, P), "n_time_bins": T, "duration": D_us}``.
        hop_us: microseconds between window ends (a multiple of ``D / T``; default ``D``).
    """
    classifier = StreamClassifier(model, spec, hop_us)
    with streaming(model):
        for chunk in chunks:
            yield from classifier.push(chunk)


class LoadedRun(NamedTuple):
    """A run folder's model, ready for :class:`StreamClassifier`.

    Attributes:
        model: the rebuilt model, in eval mode.
        spec: its frame spec with the window length (``duration``, us) filled in.
        downsample_to: ``(width, height)`` the run shrank the sensor to before framing, or None.
    """

    model: Any
    spec: dict
    downsample_to: tuple[int, int] | None


def load_run_model(run_dir: str, window_us: int | None = None) -> LoadedRun:
    """The model and representation of a ``neurodata train`` run folder (its ``model.json``).

    Parameters:
        run_dir: the run folder (``neurodata train --out``).
        window_us: the window length in microseconds; required when the run framed each sample
            whole into T bins (its spec has no ``duration``), and overriding the spec's otherwise.
    """
    from snn.models import load_run, read_model_spec

    run = read_model_spec(run_dir)
    spec = {"type": "frame", **(run.representation or {})}
    if window_us is not None:
        spec["duration"] = int(window_us)
    if spec.get("duration") is None:
        raise NeurodataError(
            f"--run {run_dir}: the run framed each sample whole into {spec.get('n_time_bins')} bins; "
            "give the live window's length with --window-us"
        )
    model = load_run(run_dir)
    model.eval()
    shrink = (run.input or {}).get("downsample_to")
    return LoadedRun(model, spec, tuple(int(v) for v in shrink) if shrink else None)
