#!/usr/bin/env bash
# Set up seethrough in ./.venv (created if missing). Idempotent: rerunning only installs what is missing.
#   bash scripts/setup.sh          # the package, its command `seethrough`, and training (torch, CPU build)
#   bash scripts/setup.sh --test   # plus what the tests need (pytest, the infini-gram reference engine)
# Any failing step stops the script with pip's own error and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: seethrough needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first, and the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build. The
# default asks for exactly the CPU build, torch==2.13.0+cpu (this environment has that wheel on disk;
# elsewhere set TORCH_INDEX=https://download.pytorch.org/whl/cpu, PyTorch's index of CPU builds). A
# torch already in .venv (e.g. your GPU build) is kept; TORCH_SPEC chooses another requirement.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  torch_spec="${TORCH_SPEC:-torch==2.13.0+cpu}"
  index=()
  [ -n "${TORCH_INDEX:-}" ] && index=(--extra-index-url "$TORCH_INDEX")
  if ! "${pip[@]}" "$torch_spec" "${index[@]}"; then
    echo "error: could not install $torch_spec; set TORCH_INDEX=https://download.pytorch.org/whl/cpu (CPU builds)," \
      "or TORCH_SPEC to the torch you want, or install torch into .venv first" >&2
    exit 1
  fi
fi
extras="[train,eval,serve]"
[ "${1:-}" = "--test" ] && extras="[train,eval,serve,test]"
"${pip[@]}" -e ".${extras}"
.venv/bin/python -c "import seethrough, torch" # fail here, not later, if the install did not take
# The browser tests (the report and the explorer) drive Debian's chromium through Playwright, which cannot
# download its own browser here. Installed with apt when missing and this user may; otherwise those tests
# say why they skip.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
      || echo "warning: apt-get install chromium failed; the browser tests will skip" >&2
  else
    echo "warning: no chromium (install it: apt-get install chromium); the browser tests will skip" >&2
  fi
fi
