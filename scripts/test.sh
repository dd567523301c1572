#!/usr/bin/env bash
# Full test run: system packages (root + apt only), venv, lint, manifest check, pytest under Xvfb.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail

start_s=$(date +%s)
report_time() {
  local rc=$?
  echo "== scripts/test.sh: exit $rc after $(( $(date +%s) - start_s )) s"
}
trap report_time EXIT
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(
  xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
)

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  need_apt=0
  if ! command -v xvfb-run >/dev/null 2>&1; then
    need_apt=1
  else
    for pkg in "${APT_PACKAGES[@]}"; do
      if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need_apt=1
        break
      fi
    done
  fi
  if [ "$need_apt" -eq 1 ]; then
    echo "== installing system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
  fi
fi

if ! command -v xvfb-run >/dev/null 2>&1; then
  echo "scripts/test.sh: xvfb-run is missing and this shell cannot install it (not root or no apt-get)." >&2
  echo "  install once: sudo apt-get install -y --no-install-recommends ${APT_PACKAGES[*]}" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  "$PY" -m venv .venv
fi

echo "== installing"
# torch first: the pinned CPU wheel (an unpinned torch would pull the CUDA build)
.venv/bin/pip install torch==2.13.0
# the spatialdata extra too: its tests (SpatialData stores in and out) run here
.venv/bin/pip install -e '.[testing,spatialdata]'

echo "== ruff"
lint_dirs=()
for d in src tests benchmarks; do
  if [ -d "$d" ]; then lint_dirs+=("$d"); fi
done
if [ "${#lint_dirs[@]}" -gt 0 ]; then
  .venv/bin/ruff check "${lint_dirs[@]}"
fi

echo "== npe2 validate"
.venv/bin/npe2 validate napari-stlnmf --imports

echo "== pytest"
unset QT_QPA_PLATFORM
# the extras installed above must work: their tests fail rather than skip (tests/extras.py)
export STLNMF_REQUIRE_EXTRAS=1
# pytest exit 5 ("no tests collected") fails the script like any other non-zero code.
xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
