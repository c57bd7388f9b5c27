"""The target description: the integer rules a chip (or a generic fixed-point datapath) computes with.

:class:`QuantTarget` is a frozen dataclass; :mod:`snn.quant` reads nothing else about the
hardware. The generic defaults here are a plain fixed-point datapath; each chip's exact rules
(Loihi 2's 12-bit decays and 24-bit state, Xylo's bit-shift decay and 16-bit saturating state,
Speck's 8-bit weights) are instances built in ``hw/``, for example::

    QuantTarget(name="loihi-like", weight_bits=8, state_bits=24, decay="multiply", decay_bits=12,
                decay_rounding="trunc", resets=("zero",))
    QuantTarget(name="xylo-like", weight_bits=8, state_bits=16, decay="shift", decay_rounding="floor",
                resets=("subtract",), bias_bits=None)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["QuantError", "QuantTarget", "ROUNDINGS", "DECAYS", "RESETS", "OVERFLOWS", "GRANULARITIES"]

ROUNDINGS = ("nearest", "floor", "trunc")  # nearest: ties upwards (floor(x + 1/2)), as a hardware adder does
DECAYS = ("multiply", "shift")
RESETS = ("subtract", "zero")
OVERFLOWS = ("saturate", "wrap")
GRANULARITIES = ("per_tensor", "per_channel")

# Widths the integer arithmetic keeps exact: products of a state (<= 32 bits) and a decay factor
# (<= 16 bits) stay below 2**53, so the fake-quantized float64 model computes them exactly too.
_BIT_LIMITS = {
    "weight_bits": (2, 8),
    "threshold_bits": (1, 31),
    "state_bits": (2, 32),
    "input_bits": (1, 16),
    "decay_bits": (1, 16),
    "bias_bits": (2, 32),
    "current_shift": (0, 16),
    "threshold_shift": (0, 16),
}


class QuantError(ValueError):
    """A model, layer or argument that quantization cannot handle; the message names it."""


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise QuantError(f"QuantTarget.{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class QuantTarget:
    """Bit widths and arithmetic rules of an integer target.

    Args:
        name: a label for reports.
        weight_bits: signed weight width, 2 to 8; weights are symmetric integers in
            ``[-(2**(b-1) - 1), 2**(b-1) - 1]`` times a scale.
        granularity: "per_tensor" (one weight scale per layer) or "per_channel" (one per output channel).
        power_of_two_scale: round weight scales up to powers of two (a mantissa-and-exponent target).
        bias_bits: signed bias width; None: the target has no biases (a layer with a bias is refused).
        threshold_bits: unsigned threshold width; thresholds are clamped into ``[1, 2**b - 1]``.
        state_bits: signed width of the synaptic current and the membrane potential registers.
        input_bits: signed width of the quantized input (spikes need 2).
        rounding: how weights, biases, thresholds and the input are rounded to integers.
        decay: "multiply": ``v <- R(v * k / 2**decay_bits)`` with ``k = (1 - 1/tau) * 2**decay_bits``;
            "shift": ``v <- v - R(v / 2**d)`` with ``2**d`` the power of two nearest ``tau``.
        decay_bits: fractional bits of the multiply decay factor (12: 4096 is 1.0).
        decay_rounding: ``R`` above: "floor" (an arithmetic shift), "trunc" (towards zero) or "nearest".
        resets: the reset modes the target implements: "subtract" (soft reset) and/or "zero".
        overflow: what a register does with a value outside its width: "saturate" (clamp) or "wrap"
            (two's complement); either way the event is counted.
        current_shift: the synaptic sum ``W x + b`` enters the state registers shifted left by this
            many bits (Loihi's MSB alignment: 6), so the state has that many bits below one weight unit.
        threshold_shift: thresholds are ``threshold_bits`` mantissas shifted left by this many bits
            (Loihi: ``vThMant << 6``).
        fire_above: spike when the potential exceeds the threshold (``v > theta``, Loihi) instead of
            reaching it (``v >= theta``).
        synapse_delay: each synapse delivers ``W x`` one step later (``W x[t-1]``, nothing at step 0)
            while its bias arrives every step (Loihi's dense and convolution layers).
    """

    name: str = "generic"
    weight_bits: int = 8
    granularity: str = "per_tensor"
    power_of_two_scale: bool = False
    bias_bits: int | None = 16
    threshold_bits: int = 16
    state_bits: int = 16
    input_bits: int = 8
    rounding: str = "nearest"
    decay: str = "multiply"
    decay_bits: int = 12
    decay_rounding: str = "floor"
    resets: tuple[str, ...] = RESETS
    overflow: str = "saturate"
    current_shift: int = 0
    threshold_shift: int = 0
    fire_above: bool = False
    synapse_delay: bool = False

    def __post_init__(self) -> None:
        for name, (low, high) in _BIT_LIMITS.items():
            value = getattr(self, name)
            if value is None and name == "bias_bits":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise QuantError(f"QuantTarget.{name} must be an integer in [{low}, {high}], got {value!r}")
        _choice("granularity", self.granularity, GRANULARITIES)
        _choice("rounding", self.rounding, ROUNDINGS)
        _choice("decay", self.decay, DECAYS)
        _choice("decay_rounding", self.decay_rounding, ROUNDINGS)
        _choice("overflow", self.overflow, OVERFLOWS)
        if not self.resets or any(r not in RESETS for r in self.resets):
            raise QuantError(f"QuantTarget.resets must be a non-empty subset of {RESETS}, got {self.resets!r}")
        for flag in ("fire_above", "synapse_delay"):
            if not isinstance(getattr(self, flag), bool):
                raise QuantError(f"QuantTarget.{flag} must be a bool, got {getattr(self, flag)!r}")

    @property
    def weight_max(self) -> int:
        """The largest weight magnitude, ``2**(weight_bits - 1) - 1``."""
        return 2 ** (self.weight_bits - 1) - 1

    @property
    def threshold_max(self) -> int:
        """The largest threshold, ``2**threshold_bits - 1``."""
        return 2**self.threshold_bits - 1

    def with_bits(self, weight_bits: int) -> QuantTarget:
        """This target with ``weight_bits``-wide weights (for a report over bit widths)."""
        return replace(self, weight_bits=weight_bits, name=f"{self.name}-w{weight_bits}")
