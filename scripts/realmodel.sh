#!/usr/bin/env bash
# The one command for the real-model tests: install (cached) and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/install-realmodel.sh | tail -n 1)
LSP_AGENT_REALMODEL_PYTHON=$python .venv/bin/python -m pytest -m realmodel tests/realmodel "$@"
