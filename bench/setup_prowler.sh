#!/usr/bin/env bash
# Install Prowler (pinned) into its own venv for the bench scripts, idempotently.
# Never in the project's .venv: Prowler pins its own boto3/pydantic and would fight pgproof's.
# Usage: bench/setup_prowler.sh   (prints the prowler executable's path on its last line)
set -euo pipefail
PROWLER_VERSION=5.46.0
PROWLER_VENV=${PGPROOF_PROWLER_VENV:-/opt/pgproof/prowler-$PROWLER_VERSION}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! "$PROWLER_VENV/bin/prowler" --version 2>/dev/null | grep -q "$PROWLER_VERSION"; then
  echo "setup_prowler: installing prowler $PROWLER_VERSION in $PROWLER_VENV (takes minutes)" >&2
  $SUDO mkdir -p "$(dirname "$PROWLER_VENV")"
  [ -x "$PROWLER_VENV/bin/python" ] || $SUDO /usr/bin/python3 -m venv "$PROWLER_VENV"
  $SUDO "$PROWLER_VENV/bin/pip" install -q -U pip 2>&1 | { grep -v "WARNING: Location" || true; }
  $SUDO "$PROWLER_VENV/bin/pip" install -q "prowler==$PROWLER_VERSION" 2>&1 | { grep -v "WARNING: Location" || true; }
  $SUDO chmod -R a+rX "$PROWLER_VENV"
fi
"$PROWLER_VENV/bin/prowler" --version >&2
echo "$PROWLER_VENV/bin/prowler"
