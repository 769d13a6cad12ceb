#!/usr/bin/env bash
# The project's own tests: lint, unit tests, lab integration, mutation matrix, game days.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
exec .venv/bin/python -m pytest tests -q -p no:randomly "$@"
