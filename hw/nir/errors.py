"""The one error of the NIR exporter and importer: every problem found, each naming its layer or node."""

from __future__ import annotations

__all__ = ["NIRError"]


class NIRError(ValueError):
    """A model that cannot be exported, or a graph that cannot be imported.

    Args:
        problems: one line per problem, each starting with the layer or node at fault.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def __reduce__(self):  # raised in worker processes, re-raised in their parent
        return type(self), (self.problems,)
