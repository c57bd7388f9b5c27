"""A tiny spiking classifier and a tiny rate-coded data set for the trainer tests (fast on CPU)."""

from __future__ import annotations

import os
import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import snn
from snn import layers

N_IN, N_CLASSES, STEPS = 24, 4, 6


def rate_coded(n: int, seed: int) -> TensorDataset:
    """``n`` samples ``[T, N_IN]`` of Bernoulli spikes: class ``c`` fires its 6 inputs at 60%, the rest at 10%."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % N_CLASSES
    rates = torch.full((n, N_IN), 0.1)
    for c in range(N_CLASSES):
        rates[labels == c, c * 6 : (c + 1) * 6] = 0.6
    spikes = (torch.rand(n, STEPS, N_IN, generator=g) < rates[:, None, :]).float()
    return TensorDataset(spikes, labels)


def loaders(
    batch_size: int = 16, shuffle: bool = True, n_train: int = 96, n_val: int = 48, generator_seed=None
):
    """Train and validation loaders; ``generator_seed`` gives the training loader its own shuffling generator."""
    generator = torch.Generator().manual_seed(generator_seed) if generator_seed is not None else None
    train = DataLoader(rate_coded(n_train, 1), batch_size=batch_size, shuffle=shuffle, generator=generator)
    val = DataLoader(rate_coded(n_val, 2), batch_size=batch_size)
    return train, val


class TinyNet(nn.Module):
    """Linear-LIF-(dropout)-Linear readout: outputs ``[T, B, N_CLASSES]`` (spiking output with ``spiking_out``).

    Neurons use the reference torch backend: the fused CPU path compiles with ``torch.compile`` on
    first use, which takes longer than these tests.
    """

    def __init__(
        self, hidden: int = 32, dropout: float = 0.0, seed: int = 0, spiking_out: bool = False
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        head = [snn.LIF(tau=2.0, v_threshold=0.5, backend="torch")] if spiking_out else []
        self.body = nn.Sequential(
            layers.Linear(N_IN, hidden),
            snn.LIF(tau=2.0, backend="torch"),
            layers.Dropout(dropout),
            layers.Linear(hidden, N_CLASSES),
            *head,
        )

    def forward(self, x):
        return self.body(x)


def ddp_worker(rank: int, world: int, port: int, out_dir: str, epochs: int, per_rank_batch: int) -> None:
    """One rank of the DDP test: train TinyNet with gloo on CPU, check the ranks agree after every epoch.

    Rank 0 saves the per-epoch parameters and the history to ``out_dir/rank0.pt``; rank 1 is given
    its own ``run_dir``, which must stay unwritten (only rank 0 writes).
    """
    import datetime
    from pathlib import Path

    import torch.distributed as dist

    from snn.train import TrainConfig, fit

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        torch.set_num_threads(1)
        model = TinyNet(seed=0)
        train, val = loaders(batch_size=per_rank_batch, shuffle=False)
        snapshots = []

        def check_in_sync(row, net):
            flat = torch.cat([p.detach().flatten() for p in net.parameters()])
            gathered = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(gathered, flat)
            if not all(torch.equal(gathered[0], g) for g in gathered):
                raise AssertionError(f"rank parameters differ after epoch {row['epoch']}")
            snapshots.append(flat.clone())

        run_dir = Path(out_dir) / ("run" if rank == 0 else "rank1-must-not-write")
        config = TrainConfig(epochs=epochs, lr=2e-2, progress=False, run_dir=str(run_dir), time_major=False)
        result = fit(model, train, val, config, callbacks=[check_in_sync])
        if rank == 0:
            torch.save({"snapshots": snapshots, "history": result.history}, Path(out_dir) / "rank0.pt")
        dist.barrier()  # both ranks done before either tears down its gloo connections
    finally:
        dist.destroy_process_group()
    # Leave without running C++ static destructors: gloo's occasionally abort a finished process at
    # interpreter exit ("terminate called without an active exception", SIGABRT), after all the
    # work above is done and saved. Failures above still propagate to mp.spawn as exceptions.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
