"""Run folders as `neurodata train` writes them (model.json + best.pt), for the commands that read one."""

from __future__ import annotations

from pathlib import Path

DVSGESTURE_TINY = {"channels": 4, "hidden": 8, "n_blocks": 2, "voting": 2, "backend": "torch"}


def tiny_run(
    run_dir: Path,
    model: str = "dvsgesture-net",
    options: dict | None = None,
    downsample_to: tuple[int, int] | None = (16, 16),
    gain: float = 8.0,
):
    """Write a run folder for a tiny zoo model on 16x16x2 frames (4 bins, 3 classes) and return the
    model. The weights are seeded and scaled by ``gain`` so that spikes flow (not trained)."""
    import torch

    from snn.models import ModelSpec, write_model_spec

    spec = ModelSpec(
        model=model,
        in_channels=2,
        input_size=(16, 16),
        num_classes=3,
        options=dict(DVSGESTURE_TINY if options is None else options),
        representation={"type": "frame", "n_time_bins": 4, "sensor_size": [16, 16, 2]},
        input={"downsample_to": list(downsample_to) if downsample_to else None},
    )
    torch.manual_seed(0)
    net = spec.build()
    for module in net.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.weight.data *= gain
    write_model_spec(run_dir, spec)
    torch.save(net.state_dict(), Path(run_dir) / "best.pt")
    return net.eval()
