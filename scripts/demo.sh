#!/usr/bin/env bash
# The main job on the embedded lab: bring it up, run the suites, run a game day, write reports.
set -uo pipefail
cd "$(dirname "$0")/.."
PGPROOF=.venv/bin/pgproof
$PGPROOF lab up || exit 2
echo
echo "== compliance suites against the lab =="
$PGPROOF check --target lab
check_rc=$?
echo
echo "== game day: kill the primary under load =="
$PGPROOF gameday kill-primary --target lab
gd_rc=$?
echo
echo "lab is still up: 'pgproof lab status', 'pgproof lab down' (or 'make down') to stop it"
echo "reports: $(readlink -f reports/latest 2>/dev/null || echo reports/)"
[ $check_rc -eq 0 ] && [ $gd_rc -eq 0 ]
