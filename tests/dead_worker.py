"""Run a DataLoader whose worker 1 dies; print the main process's error. Used by test_loaders.

Run in its own process: torch's SIGCHLD handler keeps raising in the main thread while a dead
worker's iterator lives, which would disturb the test runner itself.
"""

from __future__ import annotations

import os
import signal
import sys

from torch.utils.data import DataLoader, get_worker_info

from neurodata.loaders import load, pad_events


class DieInWorker:
    """An event transform that kills DataLoader worker 1 on its first sample.

    Dying before the worker has sent anything keeps the test deterministic: a worker killed while
    its queue thread is mid-write can leave the main process a truncated message instead.
    """

    def __init__(self, how: str):
        self.how = how

    def __call__(self, events):
        if get_worker_info().id == 1:
            if self.how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return events


if __name__ == "__main__":
    store, how, streaming = sys.argv[1], sys.argv[2], sys.argv[3] == "stream"
    blocks = {"block_samples": 4} if streaming else {}  # a streaming option: the map-style dataset refuses it
    ds = load(store, transform=DieInWorker(how), streaming=streaming, **blocks)
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
