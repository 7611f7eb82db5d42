#!/usr/bin/env bash
# GPU checks of issue 11 item 3, in under 5 minutes on a machine with a CUDA GPU:
#   1. the CUDA tests on the real GPU, without the simulator (the [gpu] cases of tests/test_cuda.py
#      and tests/test_reduced_cuda.py: CPU chain == GPU chain, exact answers);
#   2. the GPU benchmark of the reduced kernel against the full-space CUDA path
#      (bench/bench_mc_gpu_reduced.py -> bench/results/mc_gpu_reduced.json).
# Usage: bash bench/gpu_check.sh   (PYTHON=... to choose the interpreter; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
unset NUMBA_ENABLE_CUDASIM
"$PY" -c "from numba import cuda; import sys; sys.exit(0 if cuda.is_available() else 'no CUDA GPU visible to Numba')"
timeout 210 "$PY" -m pytest tests/test_cuda.py tests/test_reduced_cuda.py -q -k gpu -p no:cacheprovider
timeout 80 "$PY" bench/bench_mc_gpu_reduced.py --sweeps 20 --out bench/results/mc_gpu_reduced.json
