#!/usr/bin/env bash
# The main job on the embedded lab: bring it up, run the suites, run a game day, write reports.
set -uo pipefail
cd "$(dirname "$0")/.."
PGPROOF=.venv/bin/pgproof
echo "== lab =="
if $PGPROOF lab status >/dev/null 2>&1; then
  echo "lab already up and healthy: reusing it"
  $PGPROOF lab status
else
  $PGPROOF lab down >/dev/null 2>&1
  $PGPROOF lab up || exit 2
fi
# The lab's first full backup runs after `lab up` returns; until it has, archiving fails and
# BAK-2 would rightly fail. Wait for it (as the project's tests do), at most 180 s.
echo "waiting for the lab's first full backup ..."
.venv/bin/python -c 'from pgproof.lab import backup; from pgproof.lab.state import LabState, default_state_dir; print("backup:", backup.wait_ready(LabState.load(default_state_dir())).detail)' || exit 2
echo
echo "== compliance suites against the lab (pgproof check --target lab) =="
$PGPROOF check --target lab
check_rc=$?
suites_report=$(readlink -f reports/latest)
echo
echo "== game day: kill the primary under load (pgproof gameday kill-primary --target lab) =="
$PGPROOF gameday kill-primary --target lab
gd_rc=$?
gd_report=$(readlink -f reports/latest)
echo
echo "compliance report: $suites_report/report.html (results.json, junit.xml)"
echo "game-day report:   $gd_report/report.html (journal.json, timeline.png, report.md)"
echo "the lab is still up: 'pgproof lab status', 'make down' to stop it"
[ $check_rc -eq 0 ] && [ $gd_rc -eq 0 ]
