#!/usr/bin/env bash
# Issue 7's GPU run: the PyTorch and JAX benchmarks on a lent GPU machine, in one command.
#
# The machine has no network; its image already holds CUDA builds of torch (with torchvision
# and timm, two of the anchors) and JAX, so the packages run from this checkout's sources
# instead of being installed. From the repository root, on that machine:
#
#     bash packages/dropblock-bench/run_on_gpu.sh "$OUT"
#
# It writes torch-gpu.json, jax-gpu.json and their logs into the given folder (default:
# build/bench). Copy the JSON files into build/bench here and render the page:
#
#     python -m dropblock_bench report --results build/bench --md docs/benchmarks.md --png docs/benchmarks.png
#
# Each framework's run is capped (RUN_LIMIT seconds, default 240) so that both fit in one
# device call; a framework that fails or times out leaves no JSON and the page says so.
# Extra arguments after the folder go to both runs (say `--quick` for a smoke test, or
# `--device cpu` to try the script on a machine without a GPU). TORCH_PYTHON and JAX_PYTHON
# pick other interpreters (here: .nox/bench-torch/bin/python and .nox/bench-jax/bin/python).
set -uo pipefail

out=${1:-build/bench}
shift || true
extra=("$@")
limit=${RUN_LIMIT:-240}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"

export PYTHONPATH="$root/packages/dropblock-core/src:$root/packages/dropblock-torch/src:$root/packages/dropblock-jax/src:$root/packages/dropblock-bench/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}  # the device image's python3 holds both frameworks
declare -A interpreter=([torch]=${TORCH_PYTHON:-$python} [jax]=${JAX_PYTHON:-$python})

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu-env.txt" 2>&1 || true
"${interpreter[torch]}" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, torch.cuda.is_available())' \
    >>"$out/gpu-env.txt" 2>&1
"${interpreter[jax]}" -c 'import jax; print("jax", jax.__version__, jax.devices())' >>"$out/gpu-env.txt" 2>&1

status=0
for run in "torch cuda" "jax gpu"; do
    read -r framework device <<<"$run"
    if ! timeout "$limit" "${interpreter[$framework]}" -m dropblock_bench run "$framework" --device "$device" \
        --out "$out/$framework-gpu.json" "${extra[@]}" >"$out/$framework-gpu.log" 2>&1; then
        echo "$framework: failed or timed out (see $framework-gpu.log)" >&2
        status=1
    fi
    tail -n 3 "$out/$framework-gpu.log"
done
exit $status
