#!/usr/bin/env bash
# The project's own tests, in tiers so a failure names its stage:
#   fast  every test that needs no lab and is not marked slow (unit tests, in-process moto,
#         CLI input handling), spread over pytest-xdist workers: the loop while you edit
#   lab   the slow tests and the real lab, by stage (`stage` marker: lab, suites, matrix,
#         gameday, teardown; tests/conftest.py). Each xdist worker brings up its own lab and
#         takes whole modules in stage order, so independent modules run on separate labs.
# `scripts/test.sh fast` runs only the first; extra arguments go to pytest (e.g. --lf).
# PGPROOF_TEST_WORKERS / PGPROOF_TEST_LAB_WORKERS set the worker counts (default 2 / 3);
# PGPROOF_TEST_LAB_DIR (reuse one running lab) runs the lab tier in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
[ $# -gt 0 ] && shift
PYTEST=(.venv/bin/python -m pytest tests -q -p no:randomly)
fast_workers=${PGPROOF_TEST_WORKERS:-2}
lab_workers=${PGPROOF_TEST_LAB_WORKERS:-3}
[ -n "${PGPROOF_TEST_LAB_DIR:-}" ] && lab_workers=0
.venv/bin/ruff check .
.venv/bin/mypy  # pgproof/, strict but for the modules pyproject.toml lists
echo "== fast tier (no lab) =="
"${PYTEST[@]}" -n "$fast_workers" --timeout=300 -m "not lab and not slow" "$@"
[ "$tier" = fast ] && exit 0
echo "== lab tier (slow tests, then the lab by stage) =="
exec "${PYTEST[@]}" -n "$lab_workers" --dist loadfile --no-loadscope-reorder --timeout=900 \
  -m "lab or slow" "$@"
