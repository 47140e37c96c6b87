#!/usr/bin/env bash
# Installs the Lucent peer into the project's venv, for the benchmark only (never for tests or CI).
# torch-lucent 0.1.8 pins old torch and kornia versions; with --no-deps it runs beside the project's
# torch, given kornia 0.5.11 (newer kornia lacks names Lucent imports), ipython and decorator.
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP="${PIP:-.venv/bin/pip}"
"$PIP" install --quiet --no-deps "torch-lucent==0.1.8" "kornia==0.5.11"
"$PIP" install --quiet ipython decorator
