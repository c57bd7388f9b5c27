"""Run a DataLoader whose worker dies on sample 13; print the main process's error. Used by test_loaders.

Run in its own process: torch's SIGCHLD handler keeps raising in the main thread while a dead
worker's iterator lives, which would disturb the test runner itself.
"""

from __future__ import annotations

import os
import signal
import sys

from torch.utils.data import DataLoader

from neurodata.loaders import load, pad_events


class DieOn:
    """An event transform that kills its worker process on one sample."""

    def __init__(self, label: int, how: str):
        self.label, self.how = label, how

    def __call__(self, events):
        if len(events) and events["t"][0] // 1_000_000 == self.label:
            if self.how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return events


if __name__ == "__main__":
    store, how, streaming = sys.argv[1], sys.argv[2], sys.argv[3] == "stream"
    ds = load(store, transform=DieOn(13, how), streaming=streaming, block_samples=4)
    loader = DataLoader(
        ds, batch_size=4, num_workers=2, multiprocessing_context="fork", collate_fn=pad_events
    )
    try:
        for _ in loader:
            pass
    except RuntimeError as err:
        print(f"CAUGHT {type(err).__name__}: {err}", flush=True)
        os._exit(0)
    print("NO ERROR", flush=True)
