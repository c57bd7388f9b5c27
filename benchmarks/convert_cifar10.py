"""Reproduce the QCFS VGG-16 CIFAR-10 table: train the ANN with QCFS activations, convert, accuracy per T.

    cd <repo> && PYTHONPATH=. python benchmarks/convert_cifar10.py --data ~/data/cifar-10-batches-bin \\
        [--epochs 300] [--levels 4] [--device cuda] [--out cifar10_qcfs.json]

Needs: CIFAR-10's binary version (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, extracted:
``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``; read with numpy, nothing unpickled),
a CUDA GPU (300 epochs of VGG-16 take hours; on CPU, days) and nothing beyond this project's
dependencies. Not run in CI.

Recipe of Bu et al. (ICLR 2022, "Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency
spiking neural networks"): VGG-16 with batch norm, average pooling instead of max pooling, every ReLU
replaced by QCFS with ``L`` levels (4 for CIFAR-10) and ``lam`` learned from 8; SGD, momentum 0.9,
learning rate 0.1 with cosine decay, weight decay 5e-4, batch 128, random crop (padding 4) and
horizontal flip. Then ``ann_to_snn(ann, None)`` (the thresholds come from ``lam``) and
``accuracy_vs_timesteps`` on the 10 000 test images. Figures to compare with (from the issue; check
them against the paper's table before quoting): ANN 95.52 %, SNN T=4 93.96, T=8 94.95, T=16 95.40,
T=32 95.54.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurodata.localfs import write_atomic
from snn.convert import QCFS, accuracy_vs_timesteps, ann_to_snn

VGG16 = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).reshape(1, 3, 1, 1)


def read_split(folder: str, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 3, 32, 32]`` normalised, labels ``[N]``, from CIFAR-10's binary files (3073 bytes a record)."""
    records = []
    for name in names:
        path = os.path.join(folder, name)
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073:
            raise SystemExit(f"{path}: {raw.size} bytes is not a whole number of 3073-byte CIFAR-10 records")
        records.append(raw.reshape(-1, 3073))
    data = np.concatenate(records)
    x = torch.from_numpy(data[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return (x - MEAN) / STD, torch.from_numpy(data[:, 0].astype(np.int64))


def vgg16(levels: int) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16:
        if item == "P":
            layers.append(nn.AvgPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.BatchNorm2d(item), QCFS(levels, lam=8.0)]
            channels = item
    layers += [nn.Flatten(), nn.Linear(512, 4096), QCFS(levels, lam=8.0), nn.Dropout(0.5),
               nn.Linear(4096, 4096), QCFS(levels, lam=8.0), nn.Dropout(0.5), nn.Linear(4096, 10)]  # fmt: skip
    return nn.Sequential(*layers)


def augment(x: torch.Tensor) -> torch.Tensor:
    """Random crop with padding 4 and horizontal flip, per image, on x's device."""
    n = len(x)
    padded = F.pad(x, (4, 4, 4, 4))
    dx, dy = torch.randint(0, 9, (2, n), device=x.device)
    rows = (dy[:, None] + torch.arange(32, device=x.device)).reshape(n, 1, 32, 1).expand(n, 3, 32, 40)
    x = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(32, device=x.device)).reshape(n, 1, 1, 32).expand(n, 3, 32, 32)
    x = x.gather(3, cols)
    flip = torch.rand(n, device=x.device) < 0.5
    return torch.where(flip.reshape(n, 1, 1, 1), x.flip(3), x)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, device: str) -> None:
    decay = [p for n, p in model.named_parameters() if not n.endswith("lam")]
    lams = [p for n, p in model.named_parameters() if n.endswith("lam")]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": lams, "weight_decay": 0.0}], lr=0.1, momentum=0.9
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for epoch in range(epochs):
        model.train()
        for index in torch.randperm(len(x)).split(128):
            xb, yb = augment(x[index].to(device)), y[index].to(device)
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        schedule.step()
        print(f"epoch {epoch + 1}/{epochs}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of CIFAR-10's binary version (cifar-10-batches-bin)")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--timesteps", default="1,2,4,8,16,32,64")
    parser.add_argument("--out", default="cifar10_qcfs.json", help="results (JSON, written atomically)")
    args = parser.parse_args()
    torch.manual_seed(0)
    train_x, train_y = read_split(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test_x, test_y = read_split(args.data, ["test_batch.bin"])
    model = vgg16(args.levels).to(args.device)
    train(model, train_x, train_y, args.epochs, args.device)
    model.eval()
    test = list(zip(test_x.split(100), test_y.split(100)))
    with torch.no_grad():
        ann = sum(int((model(x.to(args.device)).argmax(1).cpu() == y).sum()) for x, y in test) / len(test_x)
    snn_model = ann_to_snn(model, None)
    steps = tuple(int(t) for t in args.timesteps.split(","))
    curve = accuracy_vs_timesteps(snn_model, test, steps, static=True, device=args.device)
    print(f"ANN {100 * ann:.2f} %  " + "  ".join(f"T={t} {100 * a:.2f}" for t, a in curve.items()))
    write_atomic(args.out, json.dumps({"ann": ann, "snn": curve, "levels": args.levels, "epochs": args.epochs}))


if __name__ == "__main__":
    main()
