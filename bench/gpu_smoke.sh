#!/usr/bin/env bash
# GPU smoke test: CUDA really used; the FCN (ResNet-50, 320 x 320, bf16, channels_last) interrupted and
# resumed; the ConvLSTM phase with every loss; fuse on the GPU against the CPU; `facemask predict --device
# cuda`; training img/s at the paper's size with 4 and 8 loader workers and the paper's wall time from it.
# About 5 minutes on one GPU; every step prints "ok <step>: ...", a failure stops with a traceback.
#
#   bench/gpu_smoke.sh              # on cuda (an error that says why when CUDA is not usable)
#   bench/gpu_smoke.sh --tiny       # CPU, tiny sizes: the same steps in seconds (tests/test_gpu_smoke.py)
#   bench/gpu_smoke.sh --device cuda:1
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" bench/gpu_smoke.py "$@"
