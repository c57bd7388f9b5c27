"""Progress of ``prepare``: one dict per step (:func:`emit_stage`), and for the decode phase the parts
staged out of those pending, events and events/s.

Reported two ways: a tqdm bar on stderr (a terminal), and one JSON-ready dict per staged part to a
callback (``neurodata prepare --json`` prints them as JSON lines on stderr)::

    {"stage": "decode", "event": "progress", "split": "train", "part": 4,
     "parts_done": 5, "parts_total": 98, "events": 12345678, "seconds": 3.2, "events_per_s": 3858024}
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the cache's modules import zarr, which prepare imports while the archives are listed
    from ..cache import PartDone


def emit_stage(callback: Callable[[dict[str, Any]], None] | None, stage: str, **fields: Any) -> None:
    """Report one step of ``prepare`` to ``callback`` (when there is one) as ``{"stage": stage, ...}``."""
    if callback:
        callback({"stage": stage, **fields})


def show_bar(progress: bool | None) -> bool:
    """``progress`` True or False forces the bar on or off; None shows it only on a terminal."""
    return sys.stderr.isatty() if progress is None else progress


class ReadProgress:
    """Reports reading an archive in place (a tar is read front to back: a pass of a 3 GB archive
    takes a while): a tqdm bar of bytes per pass, and ``{"stage": "read", "file", "done", "total"}``
    to ``callback`` about every 2 % and at the end of each pass. With ``stage="verify"`` it reports
    the wait for a local archive's checksum the same way (``{"stage": "verify", ...}``).

    Args:
        callback: Gets the read events, or ``None``.
        bar: Whether to show a tqdm bar on stderr.
        file: The archive's name.
        stage: The events' ``stage``: ``"read"`` or ``"verify"``.
    """

    STEPS = 50
    VERBS = {"read": "reading", "verify": "verifying"}

    def __init__(
        self, callback: Callable[[dict[str, Any]], None] | None, bar: bool, file: str, stage: str = "read"
    ):
        self.callback = callback
        self.show = bar
        self.file = file
        self.stage = stage
        self._bar = None
        self._emitted = -1
        self._last = 0

    def __call__(self, done: int, total: int) -> None:
        """Bytes ``done`` of the archive's ``total`` read in this pass."""
        if done < self._last:  # a new pass after one that stopped early (it had all it needed)
            self.close()
        self._last = done
        if self._bar is None and self.show:
            from tqdm.auto import tqdm

            desc = f"{self.VERBS[self.stage]} {self.file}"
            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc)
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        step = done * self.STEPS // max(total, 1)
        if step != self._emitted and (step > self._emitted or done == total):
            self._emitted = step
            emit_stage(self.callback, self.stage, file=self.file, done=done, total=total)
        if done >= total:  # the pass is over; a later pass (a large archive) starts a new bar
            self.close()

    def close(self) -> None:
        """End this pass's bar, if one is shown (also after a pass that stopped early, or an error)."""
        if self._bar is not None:
            self._bar.close()
        self._bar, self._emitted, self._last = None, -1, 0


class DecodeProgress:
    """Receives :class:`~neurodata.cache.PartDone` from ``build_cache``; reports parts and events/s.

    Args:
        callback: Gets a ``{"stage": "decode", "event": "progress", ...}`` dict per part, or ``None``.
        bar: Whether to show a tqdm bar on stderr.
    """

    def __init__(self, callback: Callable[[dict[str, Any]], None] | None, bar: bool):
        self.callback = callback
        self.bar = None
        self.bar_wanted = bar
        self.events = 0
        self.start = time.perf_counter()

    def __call__(self, part: PartDone) -> None:
        self.events += part.n_events
        seconds = time.perf_counter() - self.start
        rate = self.events / seconds if seconds > 0 else 0.0
        if self.bar_wanted:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=part.pending, unit="part", desc="decode", file=sys.stderr)
            self.bar.set_postfix_str(f"{rate / 1e6:.2f} M events/s", refresh=False)
            self.bar.update(1)
        if self.callback:
            self.callback(
                {
                    "stage": "decode",
                    "event": "progress",
                    "split": part.split,
                    "part": part.index,
                    "parts_done": part.done,
                    "parts_total": part.pending,
                    "events": self.events,
                    "seconds": round(seconds, 3),
                    "events_per_s": round(rate),
                }
            )

    def close(self) -> None:
        """Close the bar, if one was shown."""
        if self.bar is not None:
            self.bar.close()
