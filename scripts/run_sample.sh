#!/usr/bin/env bash
# Main job: STL NMF on the bundled mouse_brain sample (real H&E + spot layout, composed
# counts with ground truth); writes proportions.csv, region_means.csv, result.h5ad, run.json
# and proportions.png.
# Usage: bash scripts/run_sample.sh [OUT_DIR]   (default: stlnmf_sample_output)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/stlnmf ] || ! .venv/bin/python -c "import napari_stlnmf.cli" 2>/dev/null; then
  # torch first: the pinned CPU wheel (an unpinned torch would pull the CUDA build)
  .venv/bin/pip install torch==2.13.0
  .venv/bin/pip install -e .
fi

.venv/bin/stlnmf deconvolve --sample mouse_brain --out "${1:-stlnmf_sample_output}"
