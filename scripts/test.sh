#!/usr/bin/env bash
# The project's own tests, in tiers so a failure names its stage:
#   fast  every test that needs no lab (unit tests, in-process moto, CLI input handling)
#   lab   the real lab, by stage (lab, suites, matrix, game days, teardown: tests/conftest.py)
# `scripts/test.sh fast` runs only the first; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
[ $# -gt 0 ] && shift
PYTEST=(.venv/bin/python -m pytest tests -q -p no:randomly --timeout=900)
.venv/bin/ruff check .
.venv/bin/mypy  # pgproof/, strict but for the modules pyproject.toml lists
echo "== fast tier (no lab) =="
"${PYTEST[@]}" -m "not lab" "$@"
[ "$tier" = fast ] && exit 0
echo "== lab tier =="
exec "${PYTEST[@]}" -m lab "$@"
