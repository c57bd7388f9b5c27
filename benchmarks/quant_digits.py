"""The quantization report on scikit-learn's digits: accuracy float / fake-quantized / integer and
model size per weight width, for an MLP (batch norm, soft-reset LIF) and a CNN (batch norm, LIF,
average pooling), each fine-tuned with quantization-aware training at every width.

    cd <repo> && PYTHONPATH=. python benchmarks/quant_digits.py [--bits 8,6,4,3,2] [--epochs 15] [--qat-epochs 3] [--out report.md]

Needs scikit-learn (the ``dev`` extra); CPU only, about a minute on one core. Besides the
accuracies it prints how many spikes the fake-quantized and the integer model emitted on the test
split and on how many they differ (0 is the contract). The tables in
docs/sections/quant.md come from this script with its defaults.
"""

from __future__ import annotations

import argparse

import torch

from neurodata.localfs import write_atomic
from snn.quant import QuantTarget, prepare_qat, quant_report
from tests.quant_digits import INPUT_SCALE, cnn, evaluation_batches, fit, load, mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="8,6,4,3,2", help="weight widths, comma-separated (2 to 8)")
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=3, help="quantization-aware fine-tuning epochs per width")
    parser.add_argument("--out", help="also write the tables (Markdown) to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny tensors: threads only contend
    data = load()
    sections = []
    for name, build, flat, granularity, decay in (
        ("MLP 64-64-10, BatchNorm1d, soft-reset LIF", mlp, True, "per_tensor", "multiply"),
        ("CNN conv3x3(8)-avgpool-10, BatchNorm2d, LIF", cnn, False, "per_channel", "shift"),
    ):
        net = fit(build(), data, flat, args.epochs, 1e-2)
        quantized = []
        for bits in (int(b) for b in args.bits.split(",")):
            target = QuantTarget(name=f"w{bits}", weight_bits=bits, granularity=granularity, decay=decay)
            fake = prepare_qat(net, target, input_scale=INPUT_SCALE)
            quantized.append(fit(fake, data, flat, args.qat_epochs, 2e-3))
        report = quant_report(net, quantized, evaluation_batches(data, flat))
        section = f"### {name} ({granularity}, {decay} decay)\n\n{report.table()}\n"
        print(section)
        sections.append(section)
    if args.out:
        write_atomic(args.out, "\n".join(sections).encode())


if __name__ == "__main__":
    main()
