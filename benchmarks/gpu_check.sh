#!/usr/bin/env bash
# The prepared GPU check (issue 14, item 7): on a fresh GPU machine holding the repo and the
# wheels of `make gpu-wheels` (keras and its two missing needs, rasterio and its three, the
# project), with whichever Keras backend sees the GPU (TensorFlow, else JAX, else PyTorch).
#
#   bash benchmarks/gpu_check.sh            # full size: default model, 10980 x 10980 scene
#   bash benchmarks/gpu_check.sh --tiny     # a dry run (tiny model, small scene), any machine
#
# Environment: PYTHON (default python3), GPU_WHEELS (default .whl: installed when present, with
# --no-index --no-deps, into GPU_SITE, default /tmp/gpu_check_site), OUT (where gpu_check.json
# goes, default the working folder), GPU_CHECK_TIMEOUT (s, default 470: under 8 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${GPU_WHEELS:-.whl}
SITE=${GPU_SITE:-/tmp/gpu_check_site}
started=$(date +%s)
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
# The checkout's src first: the code under test is this working tree, wheel or not.
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2} PYTHONUNBUFFERED=1
# JAX preallocates 75 % of the GPU by default: the peak-memory figures would read that.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "nvidia-smi: not available (no NVIDIA GPU?)"
left=$(( ${GPU_CHECK_TIMEOUT:-470} - ($(date +%s) - started) ))
# SIGTERM at the limit: gpu_check.py prints the table of what it has; KILL 15 s later
exec timeout --kill-after=15 "$left" "$PY" benchmarks/gpu_check.py "$@"
