#!/usr/bin/env bash
# Build the HTML docs, warnings as errors, with every gallery script executed
# in fast mode. Usage: docs/build.sh [extra sphinx-build options]
# Output: docs/_build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export NETVIZ_GALLERY_FAST="${NETVIZ_GALLERY_FAST:-1}" MPLBACKEND=Agg PYTHONHASHSEED=0
rm -rf docs/auto_gallery docs/_build/html docs/_build/doctrees docs/sg_execution_times.rst
"$PY" -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
echo "Docs: $(pwd)/docs/_build/html/index.html"
