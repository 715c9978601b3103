#!/usr/bin/env bash
# Speed benchmarks of issue 7: distillation overhead, teacher cache, precision, profile.
# Writes benchmarks/results/speed/*.json, then benchmarks/results/speed.md (speed_report.py).
# Run from the repository root on a quiet machine: about 15 minutes on 2 CPU cores.
#   THREADS=1 benchmarks/speed.sh     # torch threads (default: torch's own choice)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/speed
mkdir -p "$OUT"
T=()
if [ -n "${THREADS:-}" ]; then T=(--threads "$THREADS"); fi
bench() { local name=$1; shift; echo "== $name: kdvision $*" >&2; $PY -m kdvision "$@" --json > "$OUT/$name.json"; }

# 1. overhead: resnet56 -> resnet20, batch 64, 32x32, the trainer's own train_step
bench overhead_fp32 bench overhead "${T[@]}"
bench overhead_fp32_default_malloc bench overhead --default-malloc "${T[@]}"
# 3. precision and memory layout (CPU autocast); fp32 and bf16 also timed in the same rounds
bench overhead_precision bench overhead --precision fp32,bf16 "${T[@]}"
bench overhead_bf16 bench overhead --precision bf16 "${T[@]}"
bench overhead_fp32_channels_last bench overhead --channels-last "${T[@]}"
bench overhead_bf16_channels_last bench overhead --precision bf16 --channels-last "${T[@]}"
# 2. teacher cache on the digits set (trains its teacher once into runs/bench_cache/teacher)
bench cache_digits bench cache "${T[@]}"
# 5. profile: teacher vs student
bench profile_cifar100_resnet56_resnet20 profile configs/cifar100/kd/resnet56_resnet20.yaml --input-size 3,32,32 "${T[@]}"
bench profile_cifar100_resnet32x4_resnet8x4 profile configs/cifar100/kd/resnet32x4_resnet8x4.yaml --input-size 3,32,32 "${T[@]}"
bench profile_digits_kd profile configs/digits/kd.yaml "${T[@]}"

$PY benchmarks/speed_report.py "$OUT" > benchmarks/results/speed.md
echo "wrote benchmarks/results/speed.md" >&2
