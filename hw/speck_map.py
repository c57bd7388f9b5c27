"""Speck / DYNAP-CNN: the layer-to-core mapping and every constraint the chip puts on a model.

A DYNAP-CNN layer is a convolution (a Linear after ``Flatten`` is a convolution whose kernel
covers the whole input), its batch norm folded in, integrate-and-fire neurons and an optional
sum pooling. The chip has 9 cores; a layer fits core ``i`` when its kernel memory
``K = c * 2^(ceil(log2(kx*ky)) + ceil(log2 f))`` and neuron memory
``N = f * 2^(ceil(log2 H) + ceil(log2 W))`` (``c`` input channels, ``f`` features, ``H x W`` the
convolution's output) fit that core's memories. :func:`check` computes shapes by formula (it
never runs the model) and lists every violation with the layer and the number that does not fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

from snn import layers
from snn.neurons import IF, Neuron
from snn.quant.plan import leaves

__all__ = [
    "KERNEL_MEMORY",
    "NEURON_MEMORY",
    "SpeckLayer",
    "SpeckReport",
    "check",
    "kernel_memory",
    "neuron_memory",
]

KI = 1024
KERNEL_MEMORY = tuple(k * KI for k in (16, 16, 16, 32, 32, 64, 64, 16, 16))  # entries per core
NEURON_MEMORY = tuple(n * KI for n in (64, 64, 64, 32, 32, 16, 16, 16, 16))
MAX_KERNEL = 16
STRIDES = (1, 2, 4, 8)
MAX_FEATURES = 1024
MAX_INPUT = 128
POOLS = (1, 2, 4)

_SYNAPSES = (nn.Conv2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_DROPPED = (nn.Dropout, layers.Dropout, nn.Identity)


def _log2_ceil(n: int) -> int:
    return (n - 1).bit_length()


def kernel_memory(channels: int, kernel: tuple[int, int], features: int) -> int:
    """Kernel memory entries of a layer of ``channels`` (c) inputs, ``kernel`` ``(ky, kx)`` and
    ``features`` (f) outputs: ``c * 2^(ceil(log2(kx*ky)) + ceil(log2 f))``."""
    return channels * 2 ** (_log2_ceil(kernel[0] * kernel[1]) + _log2_ceil(features))


def neuron_memory(features: int, height: int, width: int) -> int:
    """Neuron memory entries of a layer of ``features`` (f) maps of ``height`` (H) by ``width`` (W):
    ``f * 2^(ceil(log2 H) + ceil(log2 W))``."""
    return features * 2 ** (_log2_ceil(height) + _log2_ceil(width))


@dataclass
class SpeckLayer:
    """One DYNAP-CNN layer: its modules, shapes, memories and the core it is mapped to.

    Attributes:
        index: position in the model, from 0.
        modules: the names of the model's modules it covers.
        input_shape: ``(c, H, W)`` in.
        kernel: the convolution's ``(ky, kx)`` (a Linear's covers its whole input).
        stride: the convolution's ``(sy, sx)``.
        padding: the convolution's ``(py, px)``.
        features: output channels.
        neuron_shape: ``(f, h, w)`` of the neurons, before pooling.
        pool: the sum pooling ``(py, px)``.
        output_shape: ``(f, h, w)`` out, after pooling.
        kernel_memory: entries, see :func:`kernel_memory`.
        neuron_memory: entries, see :func:`neuron_memory`.
        core: the core it is mapped to, None when it fits none.
        has_neuron: whether a spiking neuron ends the layer.
    """

    index: int
    modules: list[str]
    input_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    features: int = 0
    neuron_shape: tuple[int, int, int] = (0, 0, 0)
    pool: tuple[int, int] = (1, 1)
    output_shape: tuple[int, int, int] = (0, 0, 0)
    kernel_memory: int = 0
    neuron_memory: int = 0
    core: int | None = None
    has_neuron: bool = False

    @property
    def name(self) -> str:
        """``layer <index> (<modules>)``, for reports."""
        return f"layer {self.index} ({', '.join(self.modules)})"


@dataclass(frozen=True)
class SpeckReport:
    """The mapping of a model onto Speck: ``layers`` (with their cores) and every ``violations``
    line, for inputs of ``input_shape`` ``(c, H, W)``."""

    input_shape: tuple[int, int, int]
    layers: list[SpeckLayer]
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the model fits the chip."""
        return not self.violations

    def to_dict(self) -> dict:
        """The report as JSON-ready data (the ``.json`` written beside the weights)."""
        return {
            "target": "speck",
            "input_shape": list(self.input_shape),
            "fits": self.ok,
            "violations": list(self.violations),
            "layers": [asdict(layer) for layer in self.layers],
            "cores": {"kernel_memory": list(KERNEL_MEMORY), "neuron_memory": list(NEURON_MEMORY)},
        }


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class _Walker:
    """Groups the model's modules into DYNAP-CNN layers, tracking the shape and the problems."""

    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        self.shape, self.flat = input_shape, False
        self.layers: list[SpeckLayer] = []
        self.problems: list[str] = []

    def current(self) -> SpeckLayer | None:
        return self.layers[-1] if self.layers else None

    def synapse(self, label: str, m: nn.Module) -> None:
        c, h, w = self.shape
        if isinstance(m, nn.Linear):
            kernel, stride, padding = (h, w), (1, 1), (0, 0)
            if h * w > 1 and not self.flat:
                self.problems.append(
                    f"{label} (Linear): applied to a {c}x{h}x{w} map without Flatten before it"
                )
            elif m.in_features != c * h * w:
                self.problems.append(
                    f"{label} (Linear): in_features {m.in_features} != {c * h * w} inputs {self.shape}"
                )
        else:
            kernel, stride, padding = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
            if self.flat:
                self.problems.append(f"{label} (Conv2d): follows a Flatten")
            if m.in_channels != c:
                self.problems.append(
                    f"{label} (Conv2d): in_channels {m.in_channels} != {c} channels arriving"
                )
            if (
                m.groups != 1
                or _pair(m.dilation) != (1, 1)
                or isinstance(m.padding, str)
                or m.padding_mode != "zeros"
            ):
                self.problems.append(
                    f"{label} (Conv2d): groups, dilation or padding mode (groups=1, dilation=1, zeros)"
                )
                padding = (0, 0) if isinstance(m.padding, str) else padding
        features = m.out_features if isinstance(m, nn.Linear) else m.out_channels
        out_hw = tuple(_conv_out(s, k, st, p) for s, k, st, p in zip((h, w), kernel, stride, padding))
        layer = SpeckLayer(
            len(self.layers), [label], self.shape, kernel, stride, padding, features, (features, *out_hw)
        )
        layer.output_shape = layer.neuron_shape
        self.layers.append(layer)
        self.shape, self.flat = layer.output_shape, False

    def neuron(self, label: str, m: Neuron) -> None:
        layer = self.current()
        if not isinstance(m, IF):
            self.problems.append(
                f"{label} ({type(m).__name__}): only integrate-and-fire neurons (snn.IF) run on Speck"
            )
        if layer is None or layer.has_neuron or layer.pool != (1, 1):
            self.problems.append(
                f"{label} ({type(m).__name__}): a neuron must directly follow a convolution or Linear"
            )
            return
        layer.modules.append(label)
        layer.has_neuron = True

    def pool(self, label: str, m: nn.Module) -> None:
        layer = self.current()
        kernel, stride = _pair(m.kernel_size), _pair(m.stride or m.kernel_size)
        if not isinstance(m, (nn.AvgPool2d,)):
            self.problems.append(f"{label} ({type(m).__name__}): Speck pools by summing (use AvgPool2d)")
        if layer is None or not layer.has_neuron or layer.pool != (1, 1):
            self.problems.append(f"{label} ({type(m).__name__}): pooling must follow a layer's neurons, once")
            return
        if kernel != stride or any(k not in POOLS for k in kernel) or any(p != 0 for p in _pair(m.padding)):
            self.problems.append(
                f"{label} ({type(m).__name__}): pooling {kernel} stride {stride} (1, 2 or 4, stride = kernel, no padding)"
            )
        layer.modules.append(label)
        layer.pool = kernel
        f, h, w = layer.neuron_shape
        layer.output_shape = (f, h // kernel[0], w // kernel[1])
        self.shape = layer.output_shape

    def visit(self, label: str, m: nn.Module) -> None:
        if isinstance(m, _DROPPED):
            return
        if isinstance(m, _SYNAPSES):
            self.synapse(label, m)
        elif isinstance(m, _NORMS):
            layer = self.current()
            if layer is None or len(layer.modules) != 1:
                self.problems.append(
                    f"{label} ({type(m).__name__}): batch norm must directly follow a synapse"
                )
            else:
                layer.modules.append(label)
        elif isinstance(m, Neuron):
            self.neuron(label, m)
        elif isinstance(m, (nn.AvgPool2d, nn.MaxPool2d, nn.AvgPool1d, nn.MaxPool1d)):
            self.pool(label, m)
        elif isinstance(m, layers.Flatten):
            self.flat = True
        else:
            self.problems.append(
                f"{label} ({type(m).__name__}): unsupported on Speck (Conv2d, Linear, BatchNorm, IF, AvgPool2d, Flatten)"
            )


def _layer_problems(layer: SpeckLayer) -> list[str]:
    problems = []
    if not layer.has_neuron:
        problems.append(
            f"{layer.name}: no IF neurons after the synapse (every Speck layer ends in spiking neurons)"
        )
    if max(layer.kernel) > MAX_KERNEL:
        problems.append(
            f"{layer.name}: kernel {layer.kernel[0]}x{layer.kernel[1]} larger than {MAX_KERNEL}x{MAX_KERNEL}"
        )
    if any(s not in STRIDES for s in layer.stride):
        problems.append(f"{layer.name}: stride {layer.stride} not in {STRIDES}")
    if layer.features > MAX_FEATURES:
        problems.append(f"{layer.name}: {layer.features} features > {MAX_FEATURES}")
    if min(layer.neuron_shape[1:]) < 1:
        problems.append(f"{layer.name}: empty output {layer.neuron_shape}")
    if layer.kernel_memory > max(KERNEL_MEMORY):
        problems.append(
            f"{layer.name}: kernel memory {layer.kernel_memory} > {max(KERNEL_MEMORY)} (largest core)"
        )
    if layer.neuron_memory > max(NEURON_MEMORY):
        problems.append(
            f"{layer.name}: neuron memory {layer.neuron_memory} > {max(NEURON_MEMORY)} (largest core)"
        )
    return problems


def _fits(layer: SpeckLayer, core: int) -> bool:
    return layer.kernel_memory <= KERNEL_MEMORY[core] and layer.neuron_memory <= NEURON_MEMORY[core]


def _assign_cores(mapped: list[SpeckLayer]) -> bool:
    """A core per layer (a bipartite matching by augmenting paths); False when none exists."""
    owner: dict[int, SpeckLayer] = {}

    def place(layer: SpeckLayer, seen: set[int]) -> bool:
        for core in range(len(KERNEL_MEMORY)):
            if core in seen or not _fits(layer, core):
                continue
            seen.add(core)
            if core not in owner or place(owner[core], seen):
                owner[core] = layer
                return True
        return False

    placed = all([place(layer, set()) for layer in mapped])  # try every layer, to name all unplaced
    for core, layer in owner.items():
        layer.core = core
    return placed


def check(model: nn.Module, input_shape: tuple[int, ...]) -> SpeckReport:
    """Map ``model`` onto Speck's cores and list every constraint it violates.

    Args:
        model: a multi-step ``nn.Sequential`` of Conv2d / Linear (each optionally with batch
            norm), ``snn.IF`` neurons, AvgPool2d (sum pooling on the chip), Flatten and dropout.
        input_shape: ``(channels, height, width)`` without batch (``(n,)`` for a flat input).

    Returns:
        a :class:`SpeckReport`; ``report.ok`` is False when ``report.violations`` lists problems,
        each naming the layer and the number that does not fit.
    """
    shape = tuple(int(s) for s in input_shape)
    shape = (shape[0], 1, 1) if len(shape) == 1 else shape
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width) or (n,), got {tuple(input_shape)}")
    walker = _Walker(shape)
    for label, m in leaves(model):
        walker.visit(label, m)
    problems = walker.problems
    if max(shape[1:]) > MAX_INPUT:
        problems.append(f"input {shape[1]}x{shape[2]} larger than {MAX_INPUT}x{MAX_INPUT}")
    for layer in walker.layers:
        c = layer.input_shape[0]
        layer.kernel_memory = kernel_memory(c, layer.kernel, layer.features)
        layer.neuron_memory = neuron_memory(*layer.neuron_shape)
        problems.extend(_layer_problems(layer))
    if not walker.layers:
        problems.append("no layers: a Speck network has 1 to 9 convolution layers")
    elif len(walker.layers) > len(KERNEL_MEMORY):
        problems.append(f"{len(walker.layers)} layers > {len(KERNEL_MEMORY)} cores")
    elif not _assign_cores(walker.layers):
        unplaced = [
            f"{layer.name} (K={layer.kernel_memory}, N={layer.neuron_memory})"
            for layer in walker.layers
            if layer.core is None
        ]
        problems.append(
            "no assignment of layers to cores fits every memory; unplaced: " + ", ".join(unplaced)
        )
    return SpeckReport(shape, walker.layers, problems)
