#!/usr/bin/env bash
# Set up seethrough in ./.venv (created if missing). Idempotent: rerunning only installs what is missing.
#   bash scripts/setup.sh          # the package, its command `seethrough`, and training (torch, CPU build)
#   bash scripts/setup.sh --test   # plus what the tests need (pytest, the infini-gram reference engine)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: seethrough needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first, and the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build. A torch
# already in .venv (e.g. your GPU build) is kept. TORCH_SPEC chooses another, e.g. TORCH_SPEC="torch==2.6.0".
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}" 2>&1 \
    | grep -v -e "is ignored: it is neither a file nor a directory" || true
fi
extras="[train,eval]"
[ "${1:-}" = "--test" ] && extras="[train,eval,test]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}" 2>&1 \
  | grep -v -e "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import seethrough" # fail here, not later, if the install did not take
