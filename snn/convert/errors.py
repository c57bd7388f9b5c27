"""The one error type of :mod:`snn.convert`."""

from __future__ import annotations

__all__ = ["ConversionError"]


class ConversionError(ValueError):
    """An ANN that cannot be converted, or bad conversion input; the message names each layer or argument at fault.

    Args:
        problems: one line per fault, each starting with the layer's path (``layer1.0.conv1``) or
            the argument's name.
        note: what would be accepted instead, said once after the list.
    """

    def __init__(self, problems: list[str] | str, note: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.note = note
        message = "; ".join(self.problems)
        if len(self.problems) > 1:
            message = f"{len(self.problems)} problems: {message}"
        super().__init__(f"{message} ({note})" if note else message)

    def __reduce__(self):  # raised in worker processes, re-raised in their parent
        return type(self), (self.problems, self.note)
