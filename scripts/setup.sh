#!/usr/bin/env bash
# Install everything pgproof and its lab need on Debian 12, idempotently.
# Debian packages (databases, proxies), the project venv (.venv) and a
# separate Patroni venv the postgres user can execute (world-readable under /opt:
# the postgres user cannot reach a venv inside a private checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(postgresql-15 postgresql-15-pgaudit postgresql-15-set-user etcd-server etcd-client haproxy
          pgbouncer pgbackrest python3-venv python3-dev util-linux make iproute2 socat openssh-server
          openssh-client chromium systemd)  # chromium: the index page test; systemd: systemd-analyze verify
PATRONI_VENV=${PGPROOF_PATRONI_VENV:-/opt/pgproof/patroni-4.1.5}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q >/dev/null
  # apt's postinst would start system services we do not use (a cluster on 5432, etcd,
  # haproxy); keep them off, and leave an existing policy-rc.d alone.
  ours=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    echo 'exit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
    ours=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
  if [ -n "$ours" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi

if [ ! -x "$PATRONI_VENV/bin/patroni" ]; then
  echo "setup: building Patroni venv in $PATRONI_VENV"
  $SUDO mkdir -p "$(dirname "$PATRONI_VENV")"
  $SUDO /usr/bin/python3 -m venv "$PATRONI_VENV"
  $SUDO "$PATRONI_VENV/bin/pip" install -q 'patroni[etcd3,psycopg3]==4.1.5' 'psycopg[binary]==3.3.9' 2>&1 | { grep -v "WARNING: Location" || true; }
  $SUDO chmod -R a+rX "$PATRONI_VENV"
fi

if [ ! -x .venv/bin/pgproof ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "setup: building project venv in .venv"
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
  .venv/bin/pip install -q -U pip 2>&1 | { grep -v "WARNING: Location" || true; }
  .venv/bin/pip install -q -e '.[dev,lab]' 2>&1 | { grep -vE "WARNING: Location|BuildBackendWarning|^ *!!|\*\*\*|careful with folders|name as your package|with strategy|^ *$" || true; }
  touch .venv/.installed
fi

# Azurite (Microsoft's Storage emulator): the Azure twin's real Blob endpoint. Pinned, shared.
AZURITE_DIR=${PGPROOF_AZURITE_DIR:-/opt/pgproof/azurite-3.37.0}
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] && command -v npm >/dev/null; then
  echo "setup: installing azurite 3.37.0 in $AZURITE_DIR"
  $SUDO mkdir -p "$AZURITE_DIR"
  $SUDO npm install -q --no-audit --no-fund --prefix "$AZURITE_DIR" azurite@3.37.0 >/dev/null 2>&1
fi
