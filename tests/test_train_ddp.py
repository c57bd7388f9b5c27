"""Data-parallel training: 2 CPU processes (gloo over 127.0.0.1) stay in sync and match one process."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from snn.train import TrainConfig, fit
from tests.train_helpers import TinyNet, ddp_worker, loaders

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch built without gloo"
)

EPOCHS, PER_RANK = 2, 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_on_free_port(tmp_path, attempts: int = 3) -> None:
    """Run the 2 ranks; a port taken by another process between probing and binding gets a retry."""
    for attempt in range(attempts):
        try:
            mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path), EPOCHS, PER_RANK), nprocs=2, join=True)
            return
        except mp.ProcessRaisedException as err:
            if "address already in use" not in str(err).lower() or attempt == attempts - 1:
                raise


def test_two_processes_stay_in_sync_and_match_single_process(tmp_path):
    spawn_on_free_port(tmp_path)
    ddp = torch.load(tmp_path / "rank0.pt", weights_only=True)
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "metrics.csv").is_file()
    assert not (tmp_path / "rank1-must-not-write").exists()

    # one process, the same global batches: DistributedSampler(shuffle=False) gives rank r the
    # samples r, r + 2, ...; per-rank batches of 8 together are the single process's batches of 16
    snapshots = []
    model = TinyNet(seed=0)
    train, val = loaders(batch_size=2 * PER_RANK, shuffle=False)
    config = TrainConfig(epochs=EPOCHS, lr=2e-2, progress=False, time_major=False)
    keep = lambda row, net: snapshots.append(torch.cat([p.detach().flatten() for p in net.parameters()]))  # noqa: E731
    single = fit(model, train, val, config, callbacks=[keep])

    for got, expected in zip(ddp["snapshots"], snapshots, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    for got, expected in zip(ddp["history"], single.history, strict=True):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_firing_rate"):
            assert got[key] == pytest.approx(expected[key], rel=1e-5), key
