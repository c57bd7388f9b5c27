#!/usr/bin/env bash
# One prepared run for a lent GPU (the `device` tool), sized for its 15-minute budget: correctness of
# the compiled Triton kernels and of the zoo network on CUDA first, then the timings of issue #6/#7
# (fused LIF vs SpikingJelly and the memory floor; training steps vs SpikingJelly at batch 64 and
# SEW-ResNet-18 at T=4). About 6-8 minutes on an H100.
#
#   here, once:   bash benchmarks/device_check.sh --prepare
#                 (wheels the device image lacks -> .device-wheels/, git-ignored; the fixtures ship in tests/data)
#   then (device tool): run  command="bash benchmarks/device_check.sh"
#                            carry=[".device-wheels"]  timeout_s=560
#   the log comes back as $OUT/device_check.txt; copy its numbers into docs/sections/snn-triton.md
#   and docs/sections/model-zoo.md with the card that produced them.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=.device-wheels

if [ "${1:-}" = "--prepare" ]; then
    mkdir -p "$WHEELS" .git/info
    for ignored in "/$WHEELS/"; do
        grep -qxF "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
    done
    # the device image has torch, triton, numba, h5py, fsspec, tqdm, pytest (Python 3.12); not these:
    "${PYTHON:-python3}" -m pip download -q --no-deps -d "$WHEELS" --python-version 3.12 --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        zarr numcodecs crc32c google-crc32c donfig msgspec lz4 zstandard spikingjelly loguru
    du -sh "$WHEELS"
    exit 0
fi

OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl 2>&1 | tail -n 2
export PYTHONPATH=$PWD:/tmp/site NEURODATA_FIXTURES=$PWD/tests/data/fixtures PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    echo "== correctness: compiled Triton neurons vs the reference loop, dvsgesture-net CUDA vs CPU"
    timeout 150 python3 tests/cuda_checks.py || echo "FAILED: cuda_checks"
    echo "== the suite's CUDA-only tests"
    timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_loaders.py \
        tests/test_representations.py -k "cuda or pin" || echo "FAILED: pytest"
    echo "== fused LIF forward+backward vs SpikingJelly and the memory floor"
    timeout 130 python3 benchmarks/bench_snn_gpu.py || echo "FAILED: bench_snn_gpu"
    echo "== training steps vs SpikingJelly (dvsgesture-net batch 64 T=16, sew-resnet18 T=4)"
    timeout 150 python3 benchmarks/bench_train_cpu.py --device cuda --reps 5 || echo "FAILED: bench_train"
} 2>&1 | tee "$OUT/device_check.txt"
